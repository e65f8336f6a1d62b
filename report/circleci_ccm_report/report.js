// Optional comforts; the page reads and prints the same without them.
(function () {
  // Opening a project moves keyboard focus to its heading; Escape goes back to its row in the matrix.
  function focusTarget() {
    var id = location.hash.slice(1);
    var heading = id && document.getElementById(id + "-h");
    if (heading && heading.tagName === "H3") heading.focus();
  }
  window.addEventListener("hashchange", focusTarget);
  focusTarget();
  document.addEventListener("keydown", function (event) {
    var open = document.querySelector(".project:target");
    if (event.key !== "Escape" || !open) return;
    var link = document.querySelector('.matrix a[href="#' + open.id + '"]');
    location.hash = "#matrix";
    if (link) link.focus();
  });
  // A filter for large estates: hides matrix rows whose project name does not contain the text.
  var filter = document.getElementById("filter");
  if (!filter) return;
  filter.parentElement.hidden = false;
  var rows = document.querySelectorAll(".matrix tbody tr");
  filter.addEventListener("input", function () {
    var text = filter.value.toLowerCase();
    rows.forEach(function (row) { row.hidden = text && row.cells[0].textContent.toLowerCase().indexOf(text) < 0; });
  });
})();
