"""The security-tool knowledge base (knowledge.yaml) and how a command, image or orb call is looked up in it.

Every lookup is a dictionary access on a word, so matching a command costs the same whatever the tool count
and is linear in the command's length: no pattern is run here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources

import yaml

from .shell import SCRIPT_FILE, Command, image_name

TOOL_FIELDS = {"id", "docs", "control", "executables", "subcommands", "options", "sources", "images", "orbs", "tasks", "names"}
_WORD = re.compile(r"[a-z0-9]+")  # one letter or digit class repeated: linear
_DOWNLOADERS = {"curl": {"-o", "--output"}, "wget": {"-O", "--output-document"}}  # program -> its output-file options
_INSTALL_TARGET = re.compile(r"install[-_]([\w.-]+)|([\w.-]+)[-_]install", re.IGNORECASE)
_INSTALLER_SCRIPT = re.compile(r"(install|installer|get)(\.sh)?$")
_NAME_PART_END = re.compile(r"[-_.]|$")  # where a downloaded file's name may end before its platform or version
_PACKAGE_VERSION = re.compile(r"[@=<>~!\[]")  # where a package name ends and its version or extras begin
_NAME_PUNCTUATION = re.compile(r"[-:_]+")  # `security-scan`, `audit:ci`: words as a step name writes them
_NAME_SPLIT = re.compile(r"([a-z0-9]+)[-:_]([a-z0-9][\w:-]*)")  # `snyk-test`: a tool's program and what follows it
_MAX_NAME_WORDS = 3  # the longest tool name a step, job or orb name is read for (`owasp dependency check`)
_NO_SUBCOMMAND = object()  # the call names none of a tool's subcommands (unlike one mapped to None: no scan)


@dataclass(frozen=True)
class Hit:
    tool: str
    control: str
    matched: str


@dataclass
class Tool:
    id: str
    docs: str
    control: str | None
    executables: tuple[str, ...] = ()
    subcommands: dict[str, str | None] = field(default_factory=dict)
    # an option that chooses the scan: a flag -> its control (`--docker`), or an option with values -> value ->
    # control (`--scanners secret,misconfig`); a value not listed scans what the call would scan without it
    options: dict[str, str | dict[str, str | None] | None] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)  # `dir:` of `grype dir:.` -> what scanning it is
    images: tuple[str, ...] = ()
    orbs: dict[str, dict[str, str | None] | None] = field(default_factory=dict)  # orb -> command -> control
    tasks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # build tool -> task names
    names: tuple[str, ...] = ()  # words a step, job or orb name uses for the tool, besides its programs'
    _by_first_word: dict[str, str | None] = field(default_factory=dict)  # `docker` of `docker scan` -> its control

    def __post_init__(self) -> None:
        controls_by_first_word: dict[str, set[str | None]] = {}
        for subcommand, control in self.subcommands.items():
            controls_by_first_word.setdefault(subcommand.split(" ", 1)[0], set()).add(control)
        self._by_first_word = {word: next(iter(controls)) for word, controls in controls_by_first_word.items()
                               if len(controls) == 1}  # a word that begins subcommands of different scans says none

    def controls(self) -> set[str]:
        """Every control some call of this tool can credit."""
        by_options = [c for m in self.options.values() for c in (m.values() if isinstance(m, dict) else (m,))]
        by_orbs = [c for commands in self.orbs.values() if commands for c in commands.values()]
        return {self.control, *self.subcommands.values(), *by_options, *self.sources.values(), *by_orbs} - {None}

    def words(self) -> set[str]:
        """What names this tool in a step, job or orb name: its id and programs when a single word (`gitleaks`),
        and its `names`, which may be several words (`bundle-audit` is the words `bundle audit`)."""
        single = {w.lower() for w in (self.id, *self.executables) if _WORD.fullmatch(w.lower())}
        return single | {" ".join(_WORD.findall(n.lower())) for n in self.names}

    def controls_for(self, args: tuple[str, ...], not_scanning: frozenset[str]) -> set[str]:
        """What calling this tool with ``args`` scans (nothing for `--help`, `install` and the like)."""
        positional = self._positional(args)
        control = self._subcommand_control(positional)
        if control is _NO_SUBCOMMAND:
            if _sets_up(args, not_scanning):
                return set()
            control = self.control
        if control is None:
            return set()
        chosen = self._controls_chosen_by_options(args, control) if self.options else None
        if chosen is None:
            chosen = {self._source_control(positional, control) if self.sources else control}
        return chosen - {None}

    def _positional(self, args: tuple[str, ...]) -> list[str]:
        """The words that are no option nor an option's value (`--scanners secret`); a listed option word counts."""
        positional, skip = [], False
        for arg in args:
            if skip:
                skip = False
            elif not arg.startswith("-") or arg in self.subcommands:
                positional.append(arg)
            else:
                skip = isinstance(self.options.get(arg), dict)
        return positional

    def _subcommand_control(self, positional: list[str]):
        for words in (positional[:3], positional[:2], positional[:1]):
            key = " ".join(words).lower()
            if key and key in self.subcommands:
                return self.subcommands[key]
        return _NO_SUBCOMMAND

    def _controls_chosen_by_options(self, args: tuple[str, ...], default: str) -> set[str | None] | None:
        """The scans the call's options choose, or None when it gives none of them."""
        chosen = None
        for i, arg in enumerate(args):
            name, _, value = arg.partition("=")
            if name not in self.options:
                continue
            meaning = self.options[name]
            if isinstance(meaning, dict):
                value = value or (args[i + 1] if i + 1 < len(args) else "")
                controls = {meaning.get(v.strip().lower(), default) for v in value.split(",") if v.strip()}
            else:
                controls = {meaning}
            chosen = (chosen or set()) | controls
        return chosen

    def _source_control(self, positional: list[str], default: str) -> str | None:
        """What scanning a source written `scheme:...` is (`grype dir:.` scans dependencies, not an image)."""
        for word in positional:
            scheme, colon, _ = word.partition(":")
            if colon and scheme.lower() in self.sources:
                return self.sources[scheme.lower()]
        return default

    def control_in_name(self, following: list[str]) -> str | None:
        """What a name scans that says this tool followed by the words ``following``: the subcommand they name or
        begin (`wiz docker` for `wizcli docker scan`, `snyk container test`), else the tool's own control."""
        for key in (" ".join(following[:2]), " ".join(following[:1])):
            if key in self.subcommands:
                return self.subcommands[key]
        if following and following[0] in self._by_first_word:
            return self._by_first_word[following[0]]
        return self.control


@dataclass
class KnowledgeBase:
    version: str
    tools: list[Tool]
    not_scanning: frozenset[str]
    not_scanning_orb_commands: frozenset[str]
    build_tools: dict[str, tuple[str, ...]]
    scan_words: frozenset[str]
    not_scan_words: frozenset[str]
    installers: dict[str, tuple[tuple[str, ...], ...]]  # program -> its install subcommands, as words
    target_runners: frozenset[str] = frozenset()
    script_runners: frozenset[str] = frozenset()
    target_runner_options_with_value: frozenset[str] = frozenset()
    environment_runners: dict[str, frozenset[str]] = field(default_factory=dict)  # program -> its environment options
    _by_executable: dict[str, list[Tool]] = field(default_factory=dict)
    _by_image: dict[str, list[Tool]] = field(default_factory=dict)
    _by_orb: dict[str, list[Tool]] = field(default_factory=dict)
    _tasks_by_executable: dict[str, dict[str, list[Tool]]] = field(default_factory=dict)
    _by_word: dict[str, list[Tool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tool in self.tools:
            for word in tool.words():
                self._by_word.setdefault(word, []).append(tool)
            for exe in tool.executables:
                self._by_executable.setdefault(exe.lower(), []).append(tool)
            for image in tool.images:
                self._by_image.setdefault(image.lower(), []).append(tool)
            for orb in tool.orbs:
                self._by_orb.setdefault(orb.lower(), []).append(tool)
            for build_tool, tasks in tool.tasks.items():
                for exe in self.build_tools.get(build_tool, (build_tool,)):
                    by_task = self._tasks_by_executable.setdefault(exe, {})
                    for task in tasks:
                        by_task.setdefault(task.lower(), []).append(tool)

    def installed(self, command: Command) -> list[Tool] | None:
        """Scanners with a control of their own that ``command`` installs (`pip3 install bandit`, `cargo install
        --locked cargo-deny`, `go install github.com/securego/gosec/v2/cmd/gosec@latest`); None when it installs
        nothing (it is no package manager's install)."""
        if command.argv[0] in _DOWNLOADERS:
            return self._downloaded(command) or None
        if command.argv[0] in self.target_runners:  # `make install-hadolint`: a target named for installing one
            names = [m.group(1) or m.group(2) for m in map(_INSTALL_TARGET.fullmatch, self._targets(command.argv[1:])) if m]
            return [t for name in names for t in self._by_executable.get(name.lower(), ()) if t.control] or None
        subcommands = self.installers.get(command.argv[0].lower())
        if not subcommands:
            return None
        positional = [a.lower() for a in command.argv[1:] if not a.startswith("-")]
        subcommand = next((s for s in subcommands if tuple(positional[:len(s)]) == s), None)
        if subcommand is None:
            return None
        tools = []
        for package in positional[len(subcommand):]:
            name = _PACKAGE_VERSION.split(package.rsplit("/", 1)[-1], 1)[0]  # path, `@v1`, `==1.7`, `[toml]` off
            tools.extend(t for t in self._by_executable.get(name, ()) if t.control and t not in tools)
        return tools

    def _downloaded(self, command: Command) -> list[Tool]:
        """Scanners a release download saves (`curl -L URL -o /usr/local/bin/clair-scanner`, `wget -O tfsec URL`,
        `curl -LO .../gitleaks_8.18_linux_x64.tar.gz`): the saved file's name, less platform and version suffixes."""
        args = command.argv[1:]
        url = next((a for a in args if a.startswith(("https://", "http://"))), "")
        output = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in _DOWNLOADERS[command.argv[0]]), None)
        path = url.split("?", 1)[0].split("/")[3:]  # past `https://host/`
        name = (output or (path[-1] if path else "")).rsplit("/", 1)[-1].lower()
        for end in [m.start() for m in _NAME_PART_END.finditer(name)][::-1]:
            tools = [t for t in self._by_executable.get(name[:end], ()) if t.control]
            if tools:
                return tools
        if _INSTALLER_SCRIPT.match(path[-1] if path else ""):
            # a project's installer (`https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh`,
            # `.../anchore/grype/main/install.sh`): the repository in its path names what it installs
            for part in path[:-1]:
                tools = [t for t in self._by_executable.get(part.lower(), ()) if t.control]
                if tools:
                    return tools
        return []

    def sets_up(self, command: Command) -> bool:
        """A call that only logs in, installs or asks for help (`license-cli auth`, `snyk auth`): no step so named
        scans, whatever its name says."""
        return _sets_up(command.argv[1:], self.not_scanning)

    def programs(self) -> frozenset[str]:
        """Every program the knowledge base names: scanners' executables and the build tools that run tasks."""
        return frozenset(self._by_executable) | frozenset(self._tasks_by_executable)

    def command_hits(self, command: Command) -> list[Hit]:
        """Scanners that ``command`` runs, by program name, by build-tool task, or by `docker run` image."""
        hits = []
        exe, args = command.argv[0].lower(), command.argv[1:]
        for tool in self._by_executable.get(exe, ()):
            hits.extend((tool, control) for control in tool.controls_for(args, self.not_scanning))
        by_task = self._tasks_by_executable.get(exe)
        if by_task and not any(a in self.not_scanning for a in args if a.startswith("-")):
            for arg in args:
                tools = next((by_task[key] for key in _task_keys(arg.lower()) if key in by_task), ())
                hits.extend((tool, tool.control) for tool in tools)
        if exe in self.target_runners:
            for target in self._targets(args):
                hits.extend((tool, tool.control) for tool in self._single_purpose(target))
        if exe in self.environment_runners:
            for environment in self._environments(exe, args):
                hits.extend((tool, tool.control) for tool in self._single_purpose(environment))
        script = SCRIPT_FILE.match(exe)
        if script:  # `bin/brakeman.sh`
            hits.extend((tool, tool.control) for tool in self._single_purpose(script.group(1)))
        elif not hits:
            hits.extend(self._named_call(exe))
        if command.image:
            for tool in self._by_image.get(command.image, ()):
                own = exe in tool.executables  # `docker run aquasec/trivy trivy image x` or `... aquasec/trivy image x`
                hits.extend((tool, control) for control in tool.controls_for(args if own else command.argv, self.not_scanning))
        return [Hit(tool.id, control, command.line) for tool, control in hits if control]

    def _single_purpose(self, name: str) -> list[Tool]:
        """The tools whose program or name ``name`` is (`bandit`, `sonarqube`, `npm-audit`) and that scan for one
        control only: a target, environment or script so named cannot be anything else (`make trivy` could be any
        of Trivy's scans)."""
        by_program = self._by_executable.get(name.lower(), [])
        by_name = [t for t in self._by_word.get(" ".join(_WORD.findall(name.lower())), []) if t not in by_program]
        return [tool for tool in by_program + by_name
                if tool.control and set(tool.subcommands.values()) <= {tool.control, None}]

    def _environments(self, exe: str, args: tuple[str, ...]) -> list[str]:
        """The environments an environment runner's call names (`tox -e lint,safety`, `nox -s lint bandit`): the
        words after its option, up to the next option."""
        options, names, naming = self.environment_runners[exe], [], False
        for arg in args:
            option, equals, value = arg.partition("=")
            if arg.startswith("-"):
                naming = option in options and not equals
                values = value if option in options else ""
            else:
                values = arg if naming else ""
            names.extend(n for n in values.split(",") if n)
        return names

    def _named_call(self, exe: str) -> list[tuple[Tool, str]]:
        """A program named for a tool and one of its scanning subcommands (`snyk-test`, `snyk:test`, `gitleaks-scan`),
        as package scripts are: that call.  A suffix that is no subcommand or scan word (`snyk-to-html`) is none."""
        match = _NAME_SPLIT.fullmatch(exe)
        if not match:
            return []
        head, rest = match.group(1), match.group(2).replace("-", " ").replace(":", " ").replace("_", " ")
        found = []
        for tool in self._by_executable.get(head, ()):
            if rest in tool.subcommands:
                found.extend((tool, control) for control in tool.controls_for(tuple(rest.split()), self.not_scanning))
            elif rest in self.scan_words and tool in self._single_purpose(head):
                found.append((tool, tool.control))
        return found

    def work_names(self, command: Command) -> list[str]:
        """The names a project gave the work ``command`` calls: its build targets (`make vulncheck`, `rake
        security`) or package script (`npm run audit:ci`), words apart (`vulncheck`, `audit ci`)."""
        exe, args = command.argv[0].lower(), command.argv[1:]
        if exe in self.target_runners:
            names = self._targets(args)
        elif exe in self.script_runners and args[:1] in (("run",), ("run-script",)):
            names = [arg for arg in args[1:2] if not arg.startswith("-")]
        else:
            names = []
        return [_NAME_PUNCTUATION.sub(" ", name) for name in names]

    def _targets(self, args: tuple[str, ...]) -> list[str]:
        """The targets of a build-target runner's call: its words that are no option, option value or `VAR=x`."""
        targets, skip = [], False
        for arg in args:
            if skip or arg.startswith("-") or "=" in arg:
                skip = arg in self.target_runner_options_with_value and not skip
                continue
            targets.append(arg)
        return targets

    def image_hits(self, image: str) -> list[Hit]:
        """Scanners whose image a job runs in (its executor): the tool's plain control."""
        return [Hit(tool.id, tool.control, f"executor image {image}") for tool in self._by_image.get(image_name(image), ())
                if tool.control]

    def names_set_up(self, name: str) -> bool:
        """A step or job name that says it sets a tool up (`Install Snyk CLI`) rather than runs it."""
        return bool(self.not_scan_words.intersection(_WORD.findall(name.lower())))

    def name_hits(self, name: str, scan_word_needed: bool = True) -> list[Hit]:
        """Scanners a step or job name says it runs: a tool's word with a scan word (`Twistlock Scan`, `Run
        Semgrep`) and no set-up word (`Install Twistlock`).  The word after the tool's may name its subcommand
        (`wiz-docker`): a multi-scan tool, whose name alone cannot say which of its scans ran, needs one."""
        words = _WORD.findall(name.lower())
        if self.names_set_up(name) or (scan_word_needed and not self.scan_words.intersection(words)):
            return []
        hits = []
        for i in range(len(words)):
            for n in range(1, _MAX_NAME_WORDS + 1):
                for tool in self._by_word.get(" ".join(words[i:i + n]), ()) if i + n <= len(words) else ():
                    control = tool.control_in_name(words[i + n:])
                    if control:
                        hits.append(Hit(tool.id, control, name))
        return hits

    def orb_hits(self, orb: str, orb_ref: str) -> list[Hit]:
        """Scanners behind an orb job or command (`alias/command` of orb ``orb``): by the registry's orb name,
        else by a tool's word in the command's or the orb's name (`secops/semgrep`, `dscar-brakeman/analyze`)."""
        command = orb_ref.split("/", 1)[-1].lower()
        if command in self.not_scanning_orb_commands:
            return []
        hits = []
        for tool in self._by_orb.get(orb.lower(), ()):
            commands = tool.orbs[orb.lower()]
            if commands is None:
                control = None if command in self.not_scanning_orb_commands else tool.control
            else:
                control = commands.get(command)
            if control:
                hits.append(Hit(tool.id, control, orb_ref))
        if not hits and orb.lower() not in self._by_orb:
            hits = self.name_hits(f"{command} {orb.rsplit('/', 1)[-1]}", scan_word_needed=False)
            hits = [Hit(h.tool, h.control, orb_ref) for h in hits]
        return hits


def _sets_up(args: tuple[str, ...], not_scanning: frozenset[str]) -> bool:
    """The call's first word or one of its options asks for no scan (`install`, `auth`, `--version`)."""
    first = next((a for a in args if not a.startswith("-")), "")
    return first.lower() in not_scanning or any(a in not_scanning for a in args if a.startswith("-"))


def _task_keys(arg: str) -> list[str]:
    """The names a build-tool argument may list a task by: as written; a Maven `group:plugin[:version]:goal` as
    `plugin:goal`; `:app:dependencyCheckAnalyze` by its last segment; npm scripts such as `audit:check` by their
    first."""
    segments = arg.split(":")
    keys = [arg]
    if len(segments) >= 3:
        plugin = segments[-3] if segments[-2][:1].isdigit() and len(segments) >= 4 else segments[-2]
        keys.append(f"{plugin}:{segments[-1]}")
    return [*keys, segments[-1], segments[0]]


def _tool(raw: dict) -> Tool:
    unknown = set(raw) - TOOL_FIELDS
    if unknown:
        raise ValueError(f"knowledge base tool {raw.get('id')!r}: unknown field(s) {sorted(unknown)}")
    orbs = {}
    for entry in raw.get("orbs") or ():
        commands = entry.get("commands")
        orbs[entry["orb"].lower()] = {str(k).lower(): v for k, v in commands.items()} if commands is not None else None
    return Tool(
        id=raw["id"], docs=raw["docs"], control=raw.get("control"),
        executables=tuple(raw.get("executables") or ()),
        subcommands={str(k).lower(): v for k, v in (raw.get("subcommands") or {}).items()},
        options={str(k): ({str(v).lower(): c for v, c in m.items()} if isinstance(m, dict) else m)
                 for k, m in (raw.get("options") or {}).items()},
        sources={str(k).lower(): v for k, v in (raw.get("sources") or {}).items()},
        images=tuple(i.lower() for i in raw.get("images") or ()), orbs=orbs,
        tasks={k: tuple(v) for k, v in (raw.get("tasks") or {}).items()},
        names=tuple(raw.get("names") or ()),
    )


def load_knowledge_base(controls: tuple[str, ...]) -> KnowledgeBase:
    """The packaged knowledge base; every control it names must be one of ``controls``."""
    text = resources.files("source_circleci_ccm.controls").joinpath("knowledge.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    tools = [_tool(raw) for raw in data["tools"]]
    for tool in tools:
        for control in tool.controls():
            if control not in controls:
                raise ValueError(f"knowledge base tool {tool.id!r}: unknown control {control!r}")
    return KnowledgeBase(
        version=str(data["version"]), tools=tools,
        not_scanning=frozenset(data["not_scanning"]),  # as written: `-V` is a version flag, `-v` often verbose
        not_scanning_orb_commands=frozenset(data["not_scanning_orb_commands"]),
        build_tools={k: tuple(v) for k, v in data["build_tools"].items()},
        scan_words=frozenset(data["scan_words"]), not_scan_words=frozenset(data["not_scan_words"]),
        installers={program: tuple(tuple(s.split()) for s in subcommands)
                    for program, subcommands in data["installers"].items()},
        target_runners=frozenset(data["target_runners"]),
        script_runners=frozenset(data["script_runners"]),
        target_runner_options_with_value=frozenset(data["target_runner_options_with_value"]),
        environment_runners={program: frozenset(options) for program, options in data["environment_runners"].items()},
    )
