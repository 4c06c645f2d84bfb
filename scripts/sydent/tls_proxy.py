#!/usr/bin/env python3
"""TLS-terminating TCP proxy (stdlib asyncio+ssl).
Usage: tls_proxy.py LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT CERT KEY"""
import asyncio, ssl, sys

LPORT, UHOST, UPORT, CERT, KEY = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)

async def pipe(r, w):
    try:
        while True:
            b = await r.read(65536)
            if not b:
                break
            w.write(b)
            await w.drain()
    except Exception:
        pass
    finally:
        try:
            w.close()
        except Exception:
            pass

async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection(UHOST, UPORT)
    except Exception:
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", LPORT, ssl=ctx)
    print("tls-proxy: https://127.0.0.1:%d -> http://%s:%d" % (LPORT, UHOST, UPORT), flush=True)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
