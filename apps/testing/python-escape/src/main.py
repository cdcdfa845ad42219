"""A Python app that tries to leave its sandbox, one way per argument:

network   connect to the worker's machine and resolve a name
host-file read /etc/passwd and the worker's home
loop      loop forever
memory    ask for 8 GiB, then grow to whatever the sandbox allows
ok        write a result and exit 0
"""
import os
import socket
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
if mode == "network":
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    socket.getaddrinfo("localhost", 80)
elif mode == "host-file":
    print(open("/etc/passwd").read())
    print(os.listdir(os.path.expanduser("~")))
elif mode == "loop":
    while True:
        pass
elif mode == "memory":
    try:
        blob = bytearray(8 << 30)
    except (MemoryError, OverflowError):
        blocks = []
        while True:
            blocks.append(bytearray(64 << 20))
with open(os.path.join(os.environ["IEXEC_OUT"], "result.txt"), "w") as f:
    f.write(f"{mode}: still here\n")
print(mode, "reached the end")
