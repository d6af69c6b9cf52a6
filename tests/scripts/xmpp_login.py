#!/usr/bin/python3
"""Log in to an XMPP server on 127.0.0.1 with SASL PLAIN over plaintext.

usage: xmpp_login.py JID PASSWORD PORT [TIMEOUT_SECONDS]

Exit status: 0 the session started (login accepted), 1 the server's authentication
refused the login (a SASL failure), 2 no verdict (usage, connection failure, the stream
ended, timeout), 3 the client itself failed (an exception, slixmpp missing). Only 0 and 1
are answers from the server. Run with Debian's /usr/bin/python3 (python3-slixmpp).
"""

import asyncio
import logging
import sys
import traceback

LOGGED_IN, REFUSED, NO_VERDICT, CRASHED = 0, 1, 2, 3


def login(jid: str, password: str, port: int, timeout: float) -> int:
    import slixmpp

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    outcome = loop.create_future()

    client = slixmpp.ClientXMPP(jid, password)
    client["feature_mechanisms"].unencrypted_plain = True

    def settle(result: str) -> None:
        if not outcome.done():
            outcome.set_result(result)

    def refused(failure) -> None:
        # The server's <failure/>: print its condition (not-authorized, …) for the report.
        condition = getattr(failure, "get", lambda *_: "")("condition", "")
        print(f"xmpp_login: SASL failure {condition}".rstrip())
        settle("refused")

    client.add_event_handler("session_start", lambda _event: settle("logged in"))
    client.add_event_handler("failed_auth", refused)
    client.add_event_handler("failed_all_auth", lambda _event: settle("refused"))
    client.add_event_handler("connection_failed", lambda _event: settle("connection failed"))
    client.add_event_handler("disconnected", lambda _event: settle("disconnected"))

    client.connect(("127.0.0.1", port), use_ssl=False, force_starttls=False, disable_starttls=True)
    try:
        result = loop.run_until_complete(asyncio.wait_for(outcome, timeout))
    except asyncio.TimeoutError:
        result = "timeout"
    try:
        if result == "logged in":
            client.disconnect()
            loop.run_until_complete(asyncio.wait_for(client.disconnected, 3))
        else:
            # After a refused login the server keeps the stream open: just drop it.
            client.abort()
    except Exception:  # noqa: BLE001 - best effort shutdown, the verdict is in
        pass
    print(f"xmpp_login: {jid}: {result}")
    return {"logged in": LOGGED_IN, "refused": REFUSED}.get(result, NO_VERDICT)


def main() -> int:
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip(), file=sys.stderr)
        return NO_VERDICT
    try:
        port = int(sys.argv[3])
        timeout = float(sys.argv[4]) if len(sys.argv) == 5 else 15.0
    except ValueError:
        print(__doc__.strip(), file=sys.stderr)
        return NO_VERDICT
    try:
        return login(sys.argv[1], sys.argv[2], port, timeout)
    except BaseException:  # noqa: BLE001 - a crash must not look like a refusal (status 1)
        traceback.print_exc()
        print("xmpp_login: the client failed", file=sys.stderr)
        return CRASHED


if __name__ == "__main__":
    sys.exit(main())
