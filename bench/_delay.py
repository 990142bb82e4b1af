"""A TCP relay that holds every chunk DELAY milliseconds on its way, in each direction: network
latency for a benchmark, which the lab (servers in namespaces on one bridge of this machine)
does not have, and which tc netem cannot add here (the kernel has no netem qdisc).

    python bench/_delay.py DELAY_MS LISTEN_PORT=HOST:PORT ...

listens on 127.0.0.1:LISTEN_PORT for each mapping, prints "ready" once all listen, and runs
until killed. Chunks keep their order (each waits its turn), so a request/response protocol
sees DELAY_MS one way, twice DELAY_MS per round trip.

On SIGUSR1 it prints one JSON line of counts so far: connections accepted, chunks relayed
toward the servers ("up") and back ("down"). A client that waits for each answer sends one
chunk per round trip, so "up" per account is the round trips an account costs.
"""

import asyncio
import json
import signal
import sys

COUNTS = {"connections": 0, "up": 0, "down": 0}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                direction: str):  # fmt: skip
    try:
        while data := await reader.read(65536):
            COUNTS[direction] += 1
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _handler(host: str, port: int, delay: float):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        COUNTS["connections"] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer, delay, "up"),
                             _pipe(up_reader, writer, delay, "down"))  # fmt: skip

    return handle


async def main(delay_ms: float, mappings: list[str]) -> None:
    servers = []
    for mapping in mappings:
        listen, target = mapping.split("=", 1)
        host, port = target.rsplit(":", 1)
        handler = _handler(host, int(port), delay_ms / 1000)
        servers.append(await asyncio.start_server(handler, "127.0.0.1", int(listen), backlog=512))
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: print(json.dumps(COUNTS), flush=True)
    )
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), sys.argv[2:]))
