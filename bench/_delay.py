"""A TCP relay that holds every chunk DELAY milliseconds on its way, in each direction: network
latency for a benchmark, which the lab (servers in namespaces on one bridge of this machine)
does not have, and which tc netem cannot add here (the kernel has no netem qdisc).

    python bench/_delay.py DELAY_MS LISTEN_PORT=HOST:PORT ...

listens on 127.0.0.1:LISTEN_PORT for each mapping, prints "ready" once all listen, and runs
until killed. Chunks keep their order (each waits its turn), so a request/response protocol
sees DELAY_MS one way, twice DELAY_MS per round trip.
"""

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float):
    try:
        while data := await reader.read(65536):
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def _handler(host: str, port: int, delay: float):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay))

    return handle


async def main(delay_ms: float, mappings: list[str]) -> None:
    servers = []
    for mapping in mappings:
        listen, target = mapping.split("=", 1)
        host, port = target.rsplit(":", 1)
        handler = _handler(host, int(port), delay_ms / 1000)
        servers.append(await asyncio.start_server(handler, "127.0.0.1", int(listen), backlog=512))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), sys.argv[2:]))
