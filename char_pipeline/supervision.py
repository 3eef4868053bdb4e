"""`serve`'s processes under supervisord: a crash restarts one process, not the service.

Why supervisord rather than a loop of our own: it is the ecosystem's well-kept process
supervisor and already does what a hand-written loop would get subtly wrong — restart on exit
(`autorestart`), a backoff that grows one second per failed start, FATAL after `startretries`
starts that did not last `startsecs`, each child in its own process group (a stop reaches
children of children), TERM then KILL after `stopwaitsecs`, and an XML-RPC interface to ask for
state and start programs. What is ours, in this module:

- the config it runs (`write_config`), with the start order serve needs: the webserver and the
  daemon have ``autostart=false`` and are started over XML-RPC once the code server answers;
- an event listener (``python -m char_pipeline.supervision listen``) that prints each exit with
  the restart count, echoes every process's output with its name, keeps the current state in a
  JSON file that /readyz and ``doctor`` read, and — when a process goes FATAL (repeated fast
  crashes) — records the cause with the tail of that process's log and shuts supervisord down.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sys
import tempfile
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

# How many quick exits in a row end the service; supervisord waits 1, 2, 3 s between them.
# "Quick" is each program's ``start_seconds``: as long as its start-up takes (the daemon
# imports Dagster and the definitions, 5–10 s on 2 cores), so a crash at import is quick.
START_RETRIES = 3
# Programs whose absence makes the service unready (the web UI is not needed to run jobs).
REQUIRED = ("api", "code-server", "dagster-daemon")
LISTENER = "supervision"


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    autostart: bool = True
    priority: int = 100
    start_seconds: int = 10


def socket_path(directory: Path) -> Path:
    """A unix socket path short enough for AF_UNIX (108 bytes), owned by this user."""
    path = directory / "supervisor.sock"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="char-serve-")) / "supervisor.sock"


def _quote(value: str) -> str:
    """One value for supervisord's ini: '%' is its interpolation character."""
    return value.replace("%", "%%")


def write_config(
    directory: Path, programs: list[Program], cwd: Path, socket: Path | None = None
) -> Path:
    """supervisord.conf for ``programs``; logs and state live in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    socket = socket or socket_path(directory)
    listen = [
        sys.executable,
        "-m",
        "char_pipeline.supervision",
        "listen",
        str(state_path(directory)),
        str(logs),
    ]
    sections = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={_quote(str(directory / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={_quote(str(directory / 'supervisord.pid'))}",
        f"childlogdir={_quote(str(logs))}",
        "",
        # Children inherit supervisord's environment: the listener (and serve) log in with
        # SUPERVISOR_USERNAME/PASSWORD from it, on a socket only this user can open.
        *(["user=root"] if os.getuid() == 0 else []),  # root is intended, not a mistake
        "",
        "[unix_http_server]",
        f"file={_quote(str(socket))}",
        "chmod=0700",
        "username=%(ENV_SUPERVISOR_USERNAME)s",
        "password=%(ENV_SUPERVISOR_PASSWORD)s",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_quote(str(socket))}",
        "",
        f"[eventlistener:{LISTENER}]",
        f"command={_quote(shlex.join(listen))}",
        f"directory={_quote(str(cwd))}",
        "events=PROCESS_STATE,PROCESS_LOG_STDOUT",
        # Log events queue while the listener writes; a burst must not drop state events.
        "buffer_size=10000",
        "priority=1",
        "autorestart=true",
        "stdout_logfile=NONE",
        # The listener prints to supervisord's stderr: the terminal (or serve's log).
        "stderr_logfile=/dev/fd/2",
        "stderr_logfile_maxbytes=0",
        "",
    ]
    for program in programs:
        sections += [
            f"[program:{program.name}]",
            f"command={_quote(shlex.join(program.command))}",
            f"directory={_quote(str(cwd))}",
            f"priority={program.priority}",
            f"autostart={str(program.autostart).lower()}",
            "autorestart=true",
            f"startsecs={program.start_seconds}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            "stopwaitsecs=15",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_quote(str(logs / f'{program.name}.log'))}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
            "stdout_events_enabled=true",
            "",
        ]
    path = directory / "supervisord.conf"
    path.write_text("\n".join(sections))
    return path


def state_path(directory: Path) -> Path:
    return directory / "state.json"


def credentials() -> dict[str, str]:
    """A login for this supervisord, passed to it (and its children) in the environment."""
    import secrets

    return {"SUPERVISOR_USERNAME": "serve", "SUPERVISOR_PASSWORD": secrets.token_urlsafe(24)}


def rpc(socket: Path, env: dict[str, str]) -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface over its unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(
        env["SUPERVISOR_USERNAME"], env["SUPERVISOR_PASSWORD"], f"unix://{socket}"
    )
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport)


def read_state(path: Path) -> dict:
    """What the listener last wrote; {} before it wrote anything."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def describe(name: str, process: dict, now: float | None = None) -> str:
    """One sentence on a process that is not running, for /readyz and doctor."""
    now = time.time() if now is None else now
    state = process.get("state", "unknown")
    restarts = process.get("restarts", 0)
    exit_ = process.get("last_exit")
    exited = f"exited ({exit_['how']}) {now - exit_['at']:.0f} s ago" if exit_ else ""
    if state == "EXITED" and exit_:
        return f"{name} {exited}; restarting it"
    if state == "STARTING" and exit_:
        return f"{name} is restarting (restart {restarts}): it {exited}"
    if state == "BACKOFF" and exit_:
        return f"{name} {exited} while starting; trying again after a pause"
    return f"{name} is {state.lower()}"


# --- the event listener -------------------------------------------------------------------


_EXIT_LINE = re.compile(r"exited: (?P<name>\S+) \((?P<how>[^;)]+)")


class Listener:
    """Turns supervisord's events into lines on the terminal and a state file."""

    def __init__(self, state_file: Path, logs: Path, supervisord_log: Path) -> None:
        self.state_file = state_file
        self.logs = logs
        self.supervisord_log = supervisord_log
        self.state: dict = {"processes": {}, "fatal": None}
        self.started: set[str] = set()
        self.partial: dict[str, str] = {}  # output events are chunks, not lines

    def handle(self, headers: dict, payload: str) -> None:
        event = headers["eventname"]
        header_line, _, data = payload.partition("\n")
        fields = dict(item.split(":", 1) for item in header_line.split() if ":" in item)
        name = fields.get("processname", "?")
        if event.startswith("PROCESS_LOG"):
            self._echo(name, data)
            return
        if name == LISTENER:
            return
        state = event.removeprefix("PROCESS_STATE_")
        now = time.time()
        process = self.state["processes"].setdefault(name, {"restarts": 0})
        process.update(state=state, since=now)
        if "pid" in fields:
            process["pid"] = int(fields["pid"])
        if state == "STARTING":
            if name in self.started:
                process["restarts"] += 1
            self.started.add(name)
        elif state in ("EXITED", "BACKOFF"):
            how = self._exit_reason(name)
            process["last_exit"] = {"at": now, "how": how}
            if state == "EXITED":
                self._say(
                    f"{name} exited ({how}); restarting it (restart {process['restarts'] + 1})."
                )
            else:
                self._say(f"{name} exited ({how}) while starting; trying again after a pause.")
        elif state == "RUNNING" and process["restarts"]:
            self._say(f"{name} is running again (restart {process['restarts']}).")
        elif state == "FATAL":
            tail = self._log_tail(name)
            message = (
                f"{name} crashed {START_RETRIES + 1} times in a row while starting "
                f"({process.get('last_exit', {}).get('how', 'unknown')}); stopping the service."
            )
            self.state["fatal"] = {"process": name, "message": message, "log_tail": tail}
            self._say(message + (f" Its last output:\n{tail}" if tail else ""))
            self._write()
            self._shutdown()
        self._write()

    def _exit_reason(self, name: str) -> str:
        """How it ended, as supervisord logged it ('terminated by SIGKILL', 'exit status 1')."""
        try:
            with self.supervisord_log.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return "unknown"
        for line in reversed(lines):
            match = _EXIT_LINE.search(line)
            if match and match["name"] == name:
                return match["how"]
        return "unknown"

    def _log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def _echo(self, name: str, data: str) -> None:
        text = self.partial.pop(name, "") + data
        *lines, rest = text.split("\n")
        if rest:
            self.partial[name] = rest
        sys.stderr.write("".join(f"{name:>17} | {line}\n" for line in lines))
        sys.stderr.flush()

    def _say(self, message: str) -> None:
        sys.stderr.write(f"{'serve':>17} | {message}\n")
        sys.stderr.flush()

    def _write(self) -> None:
        self.state["updated_at"] = time.time()
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state))
        os.replace(temporary, self.state_file)

    def _shutdown(self) -> None:
        try:
            from supervisor import childutils

            childutils.getRPCInterface(os.environ).supervisor.shutdown()
        except Exception as exc:  # the parent still sees FATAL in the state file
            self._say(f"could not stop supervisord: {exc}")


def listen(state_file: Path, logs: Path) -> None:
    """The eventlistener protocol on stdin/stdout.

    supervisord counts a payload's ``len`` in characters of UTF-8 text, so stdin is read as
    UTF-8 without newline translation. A listener restarted by supervisord picks up the state
    (and restart counts) the previous one wrote.
    """
    listener = Listener(state_file, logs, state_file.parent / "supervisord.log")
    previous = read_state(state_file)
    if previous.get("processes"):
        listener.state = previous
        listener.started = set(previous["processes"])
    listener._write()
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
    stdout = sys.stdout.buffer
    while True:
        stdout.write(b"READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return
        headers = dict(item.split(":", 1) for item in line.split() if ":" in item)
        payload = stdin.read(int(headers["len"]))
        try:
            listener.handle(headers, payload)
        except Exception as exc:  # one odd event must not cost the state of the others
            listener._say(f"could not handle {headers.get('eventname')}: {exc!r}")
        finally:
            stdout.write(b"RESULT 2\nOK")
            stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "listen":
        listen(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: python -m char_pipeline.supervision listen STATE_FILE LOG_DIR")
