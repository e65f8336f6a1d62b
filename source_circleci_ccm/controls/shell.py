"""Read a `run` step the way a shell does: the simple commands it runs, wrappers taken off.

A multi-line `run` is several commands; `&&`, `||`, `;`, `|` and `&` separate commands too; comments, line
continuations and the reserved words of `if`, `for` and `while` disappear; `FOO=bar`, `sudo`, `env`, `time`, `xargs`,
`sh -c '...'`, `npx`, `yarn dlx`, `pnpm exec`, `bundle exec`, `poetry run`, `python -m`, `bash script.sh`, `python
script.py`, `go run pkg@v`, `java -jar`, coverage tools (`coverage run -m`, `nyc`, `c8`), `xvfb-run`, `docker run IMAGE`,
`docker exec CONTAINER` and
`docker compose run|exec SERVICE` are unwrapped, so the command they run is what rules see.  A project script
given a known program and its arguments (`./project.rb gradle dependencyCheckAnalyze`, `./with-env.sh npm test`)
runs that program too, and `$CARGO audit` runs cargo when the caller knows the program.  `eval` runs its text, with
the variables the step set before it filled in (`CMD="safety check"; eval "$CMD"`).  A script fetched and run
by a shell (`bash <(curl URL)`, `sh -c "$(curl URL)"`, `curl URL | bash`) is read by its file name.  Tokenising is
one pass of a regex whose alternatives start with different characters and never backtrack, so it is linear in
the text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# One token per match.  Each alternative starts with characters no other alternative starts with, and a
# word's parts (plain run, redirection such as `2>&1`, quoted string, escape) do too, so a match is found without
# backtracking;
# an unclosed quote runs to the end of the text instead of failing.
_TOKEN = re.compile(
    r"""[ \t\r]*(?:(&&|\|\||[;&|\n])"""
    r"""|\#[^\n]*"""
    r"""|((?:[^\s'"\\;&|<>]+|[<>]+&?|'[^']*'?|"(?:[^"\\]|\\[\s\S]?)*"?|\\[\s\S]?)+))""",
)
_UNQUOTE = re.compile(r"""'([^']*)'?|"((?:[^"\\]|\\[\s\S]?)*)"?|\\([\s\S]?)""")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
# `$CARGO`, `${NPM}`: a variable holding a program (Make's convention, `export CARGO=$(rustup which cargo)`)
_VARIABLE = re.compile(r"\$\{?([A-Za-z][A-Za-z0-9]*)\}?")
# Programs that only print, wait or exit: a step of nothing else neither deploys, tests nor scans.
NO_OP_PROGRAMS = frozenset({"echo", "printf", "true", ":", "exit", "sleep", "[", "[["})  # `[ -f x ]`: a condition
# Builtins that only set the shell up (directory, variables): never the command that does a step's work.
SETUP_PROGRAMS = frozenset({"cd", "pushd", "popd", "export", "set", "source", ".", "mkdir", "chmod", "which"})
MAX_NESTING = 3  # sh -c "bash -c '...'" nests; deeper is not worth reading
MAX_WORD = 1024  # no program name or argument a rule needs is longer; a longer word is cut, not unquoted whole
MAX_WORDS = 256  # words kept of one command

# Prefixes that run the rest of the line as the command (options of their own are skipped).
_PREFIXES = {"sudo", "env", "time", "nice", "nohup", "exec", "command", "xargs", "timeout", "stdbuf", "unbuffer"}
# The shell's reserved words (POSIX "Shell Grammar"): those before a command (`if snyk test; then`, `then npm
# audit`, `do pytest`) leave it to run; a loop's or case's header (`for f in *.yml`) and the words that close a
# compound command (`fi`, `done`) run nothing.
_RESERVED_BEFORE_A_COMMAND = {"if", "then", "else", "elif", "do", "while", "until", "!"}
_RESERVED_RUNNING_NOTHING = {"for", "case", "select", "function", "fi", "done", "esac"}
_PREFIX_OPTIONS_WITH_VALUE = {"-u", "-g", "-n", "-I", "-L", "-P", "-s", "-k", "--user", "--group"}
# `runner SUBCOMMAND tool args`: package runners and environment managers.
_RUNNERS = {
    ("npm", "exec"), ("yarn", "dlx"), ("yarn", "exec"), ("pnpm", "exec"), ("pnpm", "dlx"), ("bundle", "exec"),
    ("poetry", "run"), ("pipenv", "run"), ("uv", "run"), ("pipx", "run"), ("hatch", "run"), ("pdm", "run"),
    ("rye", "run"), ("conda", "run"), ("dotnet", "tool"),
}
_DIRECT_RUNNERS = {"npx", "bunx", "pnpx", "uvx"}
# Programs that run the command after their options while measuring coverage or giving it a display:
# `nyc [--reporter X] mocha`, `c8 node --test` (istanbul.js.org, github.com/bcoe/c8), `xvfb-run -a npm test`.
_WRAPPER_OPTIONS_WITH_VALUE = {
    "nyc": {"-r", "--reporter", "-n", "--include", "-x", "--exclude", "-e", "--extension", "-i", "--require"},
    "c8": {"-r", "--reporter", "-o", "--reports-dir", "-n", "--include", "-x", "--exclude", "--src"},
    "xvfb-run": {"-n", "-s", "-f", "-e", "-p", "-w", "--server-num", "--server-args", "--auth-file",
                 "--error-file", "--xauth-protocol", "--wait"},
}
_SCRIPT_RUNNERS = {"npm", "yarn", "pnpm", "bun"}
_SHELLS = {"sh", "bash", "zsh", "dash", "ash", "ksh"}
_FETCHERS = {"curl", "wget"}
_PYTHONS = re.compile(r"python(\d(\.\d+)?)?$")
SCRIPT_FILE = re.compile(r"([\w.-]+)\.(sh|bash|rb|py|pl|js|mjs|ts)$")  # a project script: its name less the extension
# Programs this reader itself knows (wrappers it takes off); callers add the ones their rules name.
_OWN_PROGRAMS = frozenset(_SHELLS | _DIRECT_RUNNERS | _SCRIPT_RUNNERS | {r for r, _ in _RUNNERS}
                          | set(_WRAPPER_OPTIONS_WITH_VALUE)
                          | {"python", "python3", "go", "java", "docker", "docker-compose", "podman", "coverage"})
_COMPOSE_OPTIONS_WITH_VALUE = {"-f", "--file", "-p", "--project-name", "--project-directory", "--env-file", "--profile",
                               "--ansi", "--parallel", "--progress"}
_DOCKER_OPTIONS_WITH_VALUE = {
    "-v", "-e", "-w", "-u", "-p", "-l", "-h", "-m", "--volume", "--env", "--env-file", "--workdir", "--user",
    "--name", "--network", "--net", "--platform", "--entrypoint", "--mount", "--publish", "--label", "--hostname",
    "--memory", "--cpus", "--volumes-from", "--add-host", "--pull", "--ulimit", "--security-opt", "--cap-add",
    "--cap-drop", "--device", "--log-driver", "--restart", "--shm-size", "--tmpfs", "--group-add", "--cidfile",
}


@dataclass(frozen=True)
class Command:
    """One simple command: `argv[0]` is the program's base name (`./node_modules/.bin/jest` -> `jest`)."""

    argv: tuple[str, ...]
    image: str | None = None  # `docker run IMAGE ...`: the image, with `argv` the arguments given to it

    @property
    def line(self) -> str:
        return " ".join(self.argv)


def _unquote(token: str) -> str:
    return _UNQUOTE.sub(lambda m: next(g for g in m.groups() if g is not None), token)


def _split(text: str, limit: int | None) -> list[tuple[list[str], bool]]:
    """Words of each simple command, in order, each with whether the previous command's output is piped into it
    (subshell parentheses and braces dropped; the first ``limit`` commands and ``MAX_WORDS`` words of each: a
    scanner's call is told by its first words)."""
    commands: list[list[str]] = [[]]
    piped = [False]
    for m in _TOKEN.finditer(text.replace("\\\r\n", " ").replace("\\\n", " ")):
        operator, word = m.groups()
        if word and len(commands[-1]) < MAX_WORDS:
            word = word[:MAX_WORD]
            if "'" in word or '"' in word or "\\" in word:
                word = _unquote(word)
            if not commands[-1]:
                word = word.lstrip("({")
            if word.endswith(")") and "(" not in word:  # the end of a subshell: `(cd app && pytest)`
                word = word.rstrip(")")
            if word and word != "}":
                commands[-1].append(word)
        elif operator and commands[-1]:
            if limit is not None and len(commands) >= limit:
                return [(c, p) for c, p in zip(commands, piped) if c]
            commands.append([])
            piped.append(operator == "|")
    return [(c, p) for c, p in zip(commands, piped) if c]


def _skip_options(words: list[str], start: int, with_value: set[str]) -> int:
    i = start
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in with_value else 1
    return i


def _program_name(word: str) -> str:
    """The program a command word runs: its base name, less the version a package runner was given
    (`npx snyk@1.1290 test`, `pnpm dlx pnpm@9 audit`, `npx @cyclonedx/cyclonedx-npm@1`)."""
    name = word.rsplit("/", 1)[-1]
    return name.split("@", 1)[0] if "@" in name[1:] and not name.startswith("$") else name


def _runs_script_file(words: list[str]) -> bool:
    i = _skip_options(words, 1, set())
    return i < len(words) and bool(SCRIPT_FILE.match(words[i].rsplit("/", 1)[-1]))


def _container_call_options(head: str, words: list[str]) -> int | None:
    """Where the options of `docker exec`, `docker compose run|exec` or `docker-compose run|exec` begin (Compose's
    own options, such as `-f FILE`, may come before its subcommand: docs.docker.com/reference/cli/docker/compose/);
    None when the call runs no command in a container."""
    if head == "docker" and len(words) > 2 and words[1] == "exec":
        return 2
    if head == "docker-compose":
        i = _skip_options(words, 1, _COMPOSE_OPTIONS_WITH_VALUE)
    elif head == "docker" and len(words) > 2 and words[1] == "compose":
        i = _skip_options(words, 2, _COMPOSE_OPTIONS_WITH_VALUE)
    else:
        return None
    return i + 1 if i < len(words) and words[i] in ("run", "exec") else None


def _docker_run(words: list[str], depth: int, programs: frozenset[str]) -> list[Command]:
    """`docker run [options] IMAGE [args]`: the image with the arguments given to it.  Arguments that are a
    command (`/tests/run.sh`, `sh -c 'pytest'`) are read as one, so rules see its program by base name."""
    i = 2 if words[1] == "run" else 3  # docker run / docker container run
    i = _skip_options(words, i, _DOCKER_OPTIONS_WITH_VALUE)
    if i >= len(words):
        return []
    image, args = image_name(words[i]), words[i + 1:]
    if not args:
        return [Command(argv=(image.rsplit("/", 1)[-1],), image=image)]
    inner = _unwrap(args, depth + 1, programs) if depth < MAX_NESTING else []
    return [Command(argv=c.argv, image=image) for c in inner] or [Command(argv=tuple(args), image=image)]


def image_name(reference: str) -> str:
    """`docker.io/aquasec/trivy:0.50@sha256:..` -> `aquasec/trivy` (registry host, tag and digest dropped)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts).lower()


def _program_in_variable(word: str, programs: frozenset[str]) -> str | None:
    """`$CARGO` or `${CARGO}` when `cargo` is a known program: the variable holds it."""
    m = _VARIABLE.fullmatch(word)
    name = m.group(1).lower() if m else None
    return name if name in _OWN_PROGRAMS or name in programs else None


def _fetched_url(words: list[str]) -> str | None:
    """The URL a `curl`/`wget` command (or its `<(curl` / `$(curl` form) downloads, else None."""
    if not words or words[0].lstrip("<$(").rsplit("/", 1)[-1] not in _FETCHERS:
        return None
    return next((w.rstrip(")") for w in words[1:] if w.startswith(("https://", "http://"))), None)


def _fetched_script(url: str, args: list[str], programs: frozenset[str]) -> list[Command]:
    """A script downloaded and run by a shell, read by its file name (`.../gitleaks-ci/master/gitleaks.sh`,
    `.../image/script/trivy`): vendors name such a script for the tool it runs, so `X.sh` for a program X the
    caller knows runs X too, as a project script forwarding to a program does."""
    name = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not name:
        return []
    out = [Command(argv=(name,) + tuple(args))]
    stem = name.rsplit(".", 1)[0]
    if SCRIPT_FILE.match(name) and stem in programs:
        out.append(Command(argv=(stem,) + tuple(args)))
    return out


def _unwrap(words: list[str], depth: int, programs: frozenset[str]) -> list[Command]:
    """The command(s) that ``words`` really runs."""
    while words:
        if words[0].startswith("$"):
            words = [_program_in_variable(words[0], programs) or words[0]] + words[1:]
        head = _program_name(words[0])
        if words[0] in _RESERVED_BEFORE_A_COMMAND:
            after = words[1].lstrip("({") if len(words) > 1 else ""  # `do (cd app && pytest)`: a subshell may open
            words = ([after] if after else []) + words[2:]
        elif _ASSIGNMENT.match(words[0]):
            words = words[1:]
        elif words[0] in _RESERVED_RUNNING_NOTHING:
            return []
        elif head in _PREFIXES:
            i = _skip_options(words, 1, _PREFIX_OPTIONS_WITH_VALUE)
            if head == "env":
                while i < len(words) and _ASSIGNMENT.match(words[i]):
                    i += 1
            if head == "timeout" and i < len(words):
                i += 1  # the duration
            words = words[i:]
        elif head in _SHELLS and len(words) > 1 and _fetched_url(words[1:]):
            # `bash <(curl -s URL) args`, `sh -c "$(curl -fsSL URL)" args`: the shell runs the fetched script
            rest = words[2:]
            i = next((i for i, w in enumerate(rest) if w.startswith(("https://", "http://"))), len(rest))
            return _fetched_script(_fetched_url(words[1:]) or "", rest[i + 1:], programs)
        elif (head in _SHELLS and len(words) > 2 and words[1] == "-c" and words[2].startswith("$(")
              and _fetched_url(words[2].split())):
            url = _fetched_url(words[2].split()) or ""
            return _fetched_script(url, words[3:], programs)
        elif head in _SHELLS and len(words) > 2 and words[1].startswith("-") and "c" in words[1]:
            return commands(words[2], depth + 1, programs=programs) if depth < MAX_NESTING else []
        elif (head in _SHELLS or _PYTHONS.match(head)) and _runs_script_file(words):
            # `bash -e ./ci/run-tests.sh`, `python3 runtests.py`: the interpreter runs the script, which is the command
            words = words[_skip_options(words, 1, set()):]
        elif head in _DIRECT_RUNNERS:
            i = _skip_options(words, 1, {"-p", "--package"})
            words = words[i:]
        elif len(words) > 1 and (head, words[1]) in _RUNNERS:
            words = words[2 + (head == "dotnet" and len(words) > 2 and words[2] == "run"):]
            words = words[_skip_options(words, 0, set()):]
        elif _PYTHONS.match(head) and len(words) > 2 and words[1] == "-m":
            words = words[2:]
        elif head == "coverage" and len(words) > 2 and words[1] == "run":
            # coverage.py: `coverage run [options] -m module args` or `coverage run [options] script.py args`
            i = 2
            while i < len(words) and words[i].startswith("-") and words[i] != "-m":
                i += 1
            words = words[i + (i < len(words) and words[i] == "-m"):]
        elif head in _WRAPPER_OPTIONS_WITH_VALUE:
            words = words[_skip_options(words, 1, _WRAPPER_OPTIONS_WITH_VALUE[head]):]
        elif head == "go" and len(words) > 2 and words[1] == "run":
            i = _skip_options(words, 2, set())
            if i >= len(words):
                return []
            words = [words[i].split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]] + words[i + 1:]
        elif head == "java" and "-jar" in words[1:]:
            i = words.index("-jar")
            words = words[i + 1:]
        elif head in _SCRIPT_RUNNERS and len(words) > 2 and words[1] == "run" and not words[2].startswith("-"):
            # `npm run X` runs the package script or binary X: keep the call (rules know `npm run test`) and
            # read X as a command too (`yarn run snyk test` runs snyk).
            inner = _unwrap(words[2:], depth + 1, programs) if depth < MAX_NESTING else []
            return [Command(argv=(head,) + tuple(words[1:]))] + inner
        elif head in ("docker", "podman") and len(words) > 2 and (
                words[1] == "run" or (words[1] == "container" and words[2] == "run")):
            return _docker_run(words, depth, programs)
        elif (options := _container_call_options(head, words)) is not None:
            # `docker exec CONTAINER cmd`, `docker compose run|exec SERVICE cmd`: cmd is the command run
            i = _skip_options(words, options, _DOCKER_OPTIONS_WITH_VALUE)
            if i + 1 >= len(words) or depth >= MAX_NESTING:
                return [Command(argv=(head,) + tuple(words[1:]))]  # the service's own command: opaque, not nothing
            return _unwrap(words[i + 1:], depth + 1, programs)
        elif (SCRIPT_FILE.match(head) and len(words) > 1 and depth < MAX_NESTING
              and (words[1] in _OWN_PROGRAMS or words[1] in programs)):
            # the script forwards a command to a program it names: the call and the program's command both count
            return [Command(argv=(head,) + tuple(words[1:]))] + _unwrap(words[1:], depth + 1, programs)
        else:
            return [Command(argv=(head,) + tuple(words[1:]))]
    return []


def commands(text: str, depth: int = 0, limit: int | None = None,
             programs: frozenset[str] = frozenset()) -> list[Command]:
    """The simple commands a `run` step executes, in order (the first ``limit`` of them).  A command word
    that is a variable named for one of ``programs`` (or a wrapper this reader knows) runs that program."""
    out: list[Command] = []
    previous: list[str] = []
    assigned: dict[str, str] = {}  # shell variables set so far: what `eval "$CMD"` runs
    for words, piped in _split(text, limit):
        url = _fetched_url(previous) if piped else None
        head = words[0].rsplit("/", 1)[-1]
        _remember_assignments(words, assigned)
        if url and head in _SHELLS and not any(not w.startswith("-") for w in words[1:words.index("--")
                                                                                if "--" in words else None]):
            # `curl URL | bash [-s -- args]`: the shell runs the fetched script with the arguments after `--`
            out.extend(_fetched_script(url, words[words.index("--") + 1:] if "--" in words else [], programs))
        elif head == "eval" and len(words) > 1 and depth < MAX_NESTING:
            # `eval "$command"`, `eval "trivy image $IMG"`: the shell runs the text, variables it set filled in
            # (the text read gets no variables of its own: one level, so a hostile step cannot multiply itself)
            line = " ".join(assigned.get(_VARIABLE.fullmatch(w).group(1), w) if _VARIABLE.fullmatch(w) else w
                            for w in words[1:])
            out.extend(commands(line, depth + 1, None if limit is None else limit - len(out), programs))
        else:
            out.extend(_unwrap(words, depth, programs))
        previous = words
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def _remember_assignments(words: list[str], assigned: dict[str, str]) -> None:
    """`NAME=value` alone or after `export`/`local`/`readonly`/`declare` sets a variable (`A=1 cmd` does not)."""
    start = 1 if words[0] in ("export", "local", "readonly", "declare") else 0
    if all(_ASSIGNMENT.match(w) for w in words[start:]):
        for word in words[start:]:
            name, _, value = word.partition("=")
            assigned[name] = value
