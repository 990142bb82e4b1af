"""Redis: the Celery broker of the console. No persistence; runs as the redis OS user."""

import socket

from console.lab import proc
from console.lab.part import Part


class Redis(Part):
    name = "redis"
    comm = "redis-server"
    description = "Redis broker"

    @property
    def pid_file(self):
        return self.dir / "redis.pid"

    def build(self, rec: dict) -> None:
        proc.make_dir(self.dir, owner="redis", mode=0o750)
        argv = ["redis-server", "--bind", rec["host"], "--port", str(rec["port"])]
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        argv += ["--daemonize", "yes", "--pidfile", str(self.pid_file)]
        argv += ["--logfile", str(self.dir / "redis.log"), "--dir", str(self.dir)]
        proc.run(self.host.argv(argv, user="redis"), timeout=30, new_session=True)
        try:
            proc.wait_for(lambda: self.pong(rec), 20, "redis to answer PING")
        except proc.LabError as e:
            raise proc.LabError(f"{e}\n{proc.tail(self.dir / 'redis.log')}") from None

    @staticmethod
    def pong(rec: dict) -> bool:
        try:
            with socket.create_connection((rec["host"], rec["port"]), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def env(self, rec: dict) -> dict[str, str]:
        return {"CELERY_BROKER_URL": f"redis://{rec['host']}:{rec['port']}/0"}
