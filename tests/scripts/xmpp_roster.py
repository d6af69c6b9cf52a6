#!/usr/bin/python3
"""Log in to an XMPP server on 127.0.0.1 (SASL PLAIN over plaintext) and print the roster.

usage: xmpp_roster.py JID PASSWORD PORT [TIMEOUT_SECONDS]

Prints one line per roster item: `item JID<TAB>NAME<TAB>GROUP,GROUP...` (groups sorted).
Exit status: 0 the roster was received, 1 authentication failed, 2 anything else. Run with
Debian's /usr/bin/python3 (python3-slixmpp).
"""

import asyncio
import logging
import sys

import slixmpp


def main() -> int:
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    jid, password, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) == 5 else 15.0
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    outcome = loop.create_future()

    client = slixmpp.ClientXMPP(jid, password)
    client["feature_mechanisms"].unencrypted_plain = True

    def settle(result: str) -> None:
        if not outcome.done():
            outcome.set_result(result)

    async def on_session(_event) -> None:
        try:
            await client.get_roster(timeout=timeout)
        except Exception as err:  # noqa: BLE001 - reported as the outcome
            settle(f"roster request failed: {err}")
            return
        settle("success")

    client.add_event_handler("session_start", on_session)
    client.add_event_handler("failed_auth", lambda _event: settle("failed"))
    client.add_event_handler("failed_all_auth", lambda _event: settle("failed"))
    client.add_event_handler("connection_failed", lambda _event: settle("connection failed"))
    client.add_event_handler("disconnected", lambda _event: settle("disconnected"))

    client.connect(("127.0.0.1", port), use_ssl=False, force_starttls=False, disable_starttls=True)
    try:
        result = loop.run_until_complete(asyncio.wait_for(outcome, timeout))
    except asyncio.TimeoutError:
        result = "timeout"
    if result == "success":
        roster = client.client_roster
        for item_jid in sorted(roster.keys()):
            item = roster[item_jid]
            groups = ",".join(sorted(item["groups"]))
            print(f"item {item_jid}\t{item['name']}\t{groups}")
    try:
        if result == "success":
            client.disconnect()
            loop.run_until_complete(asyncio.wait_for(client.disconnected, 3))
        else:
            client.abort()
    except Exception:  # noqa: BLE001 - best effort shutdown
        pass
    print(f"xmpp_roster: {jid}: {result}")
    return {"success": 0, "failed": 1}.get(result, 2)


if __name__ == "__main__":
    sys.exit(main())
