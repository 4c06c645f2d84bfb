#!/usr/bin/env python3
"""Tiny asyncio SMTP sink (stdlib only). Accepts every message, writes each to
OUTDIR/mail-NNN.eml and logs a line. Usage: smtp_sink.py PORT OUTDIR"""
import asyncio, os, sys

PORT, OUT = int(sys.argv[1]), sys.argv[2]
os.makedirs(OUT, exist_ok=True)
counter = 0

async def handle(reader, writer):
    global counter
    w = lambda s: writer.write(s.encode() + b"\r\n")
    w("220 sink ESMTP ready")
    await writer.drain()
    mail_from, rcpts = None, []
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = line.decode("utf-8", "replace").rstrip("\r\n")
        verb = cmd[:4].upper()
        if verb in ("EHLO", "HELO"):
            w("250-sink" if verb == "EHLO" else "250 sink")
            if verb == "EHLO":
                w("250 8BITMIME")
        elif verb == "MAIL":
            mail_from, rcpts = cmd[10:].strip(), []
            w("250 OK")
        elif verb == "RCPT":
            rcpts.append(cmd[8:].strip())
            w("250 OK")
        elif verb == "DATA":
            w("354 End data with <CR><LF>.<CR><LF>")
            await writer.drain()
            data = []
            while True:
                l = await reader.readline()
                if not l or l in (b".\r\n", b".\n"):
                    break
                if l.startswith(b".."):
                    l = l[1:]
                data.append(l)
            counter += 1
            path = os.path.join(OUT, "mail-%03d.eml" % counter)
            with open(path, "wb") as f:
                f.write(b"".join(data))
            print("smtp-sink: stored %s from=%s to=%s" % (path, mail_from, rcpts), flush=True)
            w("250 OK queued")
        elif verb == "QUIT":
            w("221 bye")
            await writer.drain()
            break
        elif verb in ("RSET", "NOOP"):
            w("250 OK")
        else:
            w("502 not implemented")
        await writer.drain()
    writer.close()

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", PORT)
    print("smtp-sink: listening on 127.0.0.1:%d" % PORT, flush=True)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
