#!/usr/bin/env python3
"""An independent PC/SC client (pyscard): selects the T-Union application on a reader, reads
the balance and the EF18 transaction log, and prints them as JSON. Written from the card
profile, sharing no code with Yitong, so that a test can check what the gate wrote."""
import json
import sys

from smartcard.System import readers

AID = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05]


def main():
    wanted = sys.argv[1] if len(sys.argv) > 1 else "Virtual PCD 00 00"
    reader = next((r for r in readers() if str(r) == wanted), None)
    if reader is None:
        sys.exit(f"no reader {wanted!r}: {[str(r) for r in readers()]}")
    connection = reader.createConnection()
    connection.connect()

    def send(apdu):
        data, sw1, sw2 = connection.transmit(apdu)
        return bytes(data), (sw1 << 8) | sw2

    _, sw = send([0x00, 0xA4, 0x04, 0x00, len(AID)] + AID + [0x00])
    if sw != 0x9000:
        sys.exit(f"SELECT answered {sw:04X}")
    data, sw = send([0x80, 0x5C, 0x00, 0x02, 0x04])
    if sw != 0x9000:
        sys.exit(f"GET BALANCE answered {sw:04X}")
    balance = int.from_bytes(data, "big", signed=True)
    log = []
    for n in range(1, 11):
        record, sw = send([0x00, 0xB2, n, (0x18 << 3) | 4, 23])
        if sw == 0x6A83:
            break
        if sw != 0x9000 or len(record) != 23:
            sys.exit(f"READ RECORD {n} answered {sw:04X}")
        log.append({
            "counter": int.from_bytes(record[0:2], "big"),
            "amount_fen": int.from_bytes(record[5:9], "big"),
            "type": record[9],
            "terminal_id": record[10:16].hex().upper(),
            "date": record[16:20].hex(),
            "time": record[20:23].hex(),
        })
    print(json.dumps({"balance_fen": balance, "log": log}))


if __name__ == "__main__":
    main()
