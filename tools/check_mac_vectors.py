#!/usr/bin/env python3
"""Recompute load and purchase MAC1, MAC2 and TAC from JSON Lines transaction vectors.

An independent check of yitong-crypto: written from the card profile alone
(/work/shared/spec/card-profile.md and docs/card-profile.md, "Cryptography"), with the
`cryptography` package's DES and SM4, sharing no code with the Rust crates.

    cargo run -q -p yitong-terminal --example mac_vectors --features in-process -- --count 200 > v.jsonl
    python3 tools/check_mac_vectors.py v.jsonl

Exits 0 when every value matches, 1 on any mismatch (the first few are printed), 2 on bad input.
"""

import json
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 moved TripleDES to the "decrepit" package.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older versions
    TripleDES = algorithms.TripleDES

ALGORITHM_DES = 0x00
ALGORITHM_SM4 = 0x04
TYPE_LOAD = 0x02
PURCHASE_TYPES = (0x06, 0x09)
MISMATCHES_SHOWN_MAX = 5


def ecb_encrypt(algorithm, block):
    encryptor = Cipher(algorithm, modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def tdes(key16, block8):
    """Two-key 3DES (K1 K2 K1) of one block."""
    return ecb_encrypt(TripleDES(key16 + key16[:8]), block8)


def des(key8, block8):
    """Single DES: 3DES with K K K."""
    return ecb_encrypt(TripleDES(key8 * 3), block8)


def sm4(key16, block16):
    return ecb_encrypt(algorithms.SM4(key16), block16)


def invert(data):
    return bytes(b ^ 0xFF for b in data)


def pad_method_2(data, block_len):
    """ISO/IEC 9797-1 padding method 2: 80 then zeros, always added."""
    padded = data + b"\x80"
    while len(padded) % block_len:
        padded += b"\x00"
    return padded


def cbc_mac(encrypt, block_len, data):
    """ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC, IV zero); the first 4 bytes of the last block."""
    chain = bytes(block_len)
    padded = pad_method_2(data, block_len)
    for i in range(0, len(padded), block_len):
        block = bytes(a ^ b for a, b in zip(chain, padded[i:i + block_len]))
        chain = encrypt(block)
    return chain[:4]


class Des:
    """Algorithm ID 00: the profile's DES/3DES rules."""

    @staticmethod
    def diversify(key, factor):
        return tdes(key, factor) + tdes(key, invert(factor))

    @staticmethod
    def session_key(card_key, input8):
        return tdes(card_key, input8)

    @staticmethod
    def mac(session_key, data):
        return cbc_mac(lambda block: des(session_key, block), 8, data)

    @staticmethod
    def tac(dtk, data):
        tac_key = bytes(a ^ b for a, b in zip(dtk[:8], dtk[8:]))
        return cbc_mac(lambda block: des(tac_key, block), 8, data)


class Sm4:
    """Algorithm ID 04: the project's SM4 profile choices (docs/card-profile.md)."""

    @staticmethod
    def diversify(key, factor):
        return sm4(key, factor + invert(factor))

    @staticmethod
    def session_key(card_key, input8):
        return sm4(card_key, input8 + b"\x80" + bytes(7))

    @staticmethod
    def mac(session_key, data):
        return cbc_mac(lambda block: sm4(session_key, block), 16, data)

    @staticmethod
    def tac(dtk, data):
        return cbc_mac(lambda block: sm4(dtk, block), 16, data)


def card_key(suite, master_key, issuer_id, serial):
    """Profile choice: diversify by the issuer ID first, then by ASN8 (the serial's last 8 bytes)."""
    return suite.diversify(suite.diversify(master_key, issuer_id), serial[-8:])


def u32(value):
    return value.to_bytes(4, "big")


def u16(value):
    return value.to_bytes(2, "big")


def expected_values(vector):
    """The (MAC1, MAC2, TAC) the profile gives for one vector, as bytes."""
    suite = {ALGORITHM_DES: Des, ALGORITHM_SM4: Sm4}[vector["algorithm"]]
    h = bytes.fromhex
    issuer_id, serial = h(vector["issuer_id"]), h(vector["serial"])
    random, terminal_id = h(vector["card_random"]), h(vector["terminal_id"])
    date, time = h(vector["date"]), h(vector["time"])
    amount, kind = u32(vector["amount"]), bytes([vector["type"]])
    counter = u16(vector["counter"])
    dtk = card_key(suite, h(vector["dtk"]), issuer_id, serial)
    if vector["type"] == TYPE_LOAD:
        dlk = card_key(suite, h(vector["dlk"]), issuer_id, serial)
        session = suite.session_key(dlk, random + counter + b"\x80\x00")
        mac1 = suite.mac(session, u32(vector["balance_before"]) + amount + kind + terminal_id)
        mac2 = suite.mac(session, amount + kind + terminal_id + date + time)
        tac = suite.tac(
            dtk,
            u32(vector["balance_after"]) + counter + amount + kind + terminal_id + date + time,
        )
    elif vector["type"] in PURCHASE_TYPES:
        dpk = card_key(suite, h(vector["dpk"]), issuer_id, serial)
        number = u32(vector["terminal_transaction_number"])
        session = suite.session_key(dpk, random + counter + number[2:])
        mac1 = suite.mac(session, amount + kind + terminal_id + date + time)
        mac2 = suite.mac(session, amount)
        tac = suite.tac(dtk, amount + kind + terminal_id + number + date + time)
    else:
        raise ValueError(f"type {vector['type']:#04x} is neither a load nor a purchase")
    return {"mac1": mac1, "mac2": mac2, "tac": tac}


def check_published_values():
    """The profile's published check values; the key is used directly as the session-key key."""
    key = bytes.fromhex("11223344556677888877665544332211")
    session = Des.session_key(key, bytes.fromhex("11223344" "0000" "8000"))
    assert session.hex().upper() == "9B1D924E05595603", session.hex()
    mac1 = Des.mac(session, bytes.fromhex("00000000" "00001000" "01" "001122334455"))
    assert mac1.hex().upper() == "2988AE5A", mac1.hex()
    mac2 = Des.mac(
        session, bytes.fromhex("00001000" "01" "001122334455" "20111221" "214822")
    )
    assert mac2.hex().upper() == "3A845BF0", mac2.hex()


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} VECTORS.jsonl", file=sys.stderr)
        return 2
    check_published_values()
    passed, failed, transactions, mismatches = 0, 0, 0, []
    with open(argv[1], encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                vector = json.loads(line)
                expected = expected_values(vector)
            except (KeyError, ValueError, TypeError) as error:
                print(f"line {line_number}: bad vector: {error!r}", file=sys.stderr)
                return 2
            wrong = [
                f"{name} card/host {vector[name].upper()} profile {value.hex().upper()}"
                for name, value in expected.items()
                if bytes.fromhex(vector[name]) != value
            ]
            # One vector holds three values; each counts.
            failed += len(wrong)
            passed += len(expected) - len(wrong)
            transactions += 1
            if wrong:
                mismatches.append(f"line {line_number} ({vector['kind']}, algorithm "
                                  f"{vector['algorithm']:02X}): " + "; ".join(wrong))
    for mismatch in mismatches[:MISMATCHES_SHOWN_MAX]:
        print(mismatch)
    if transactions == 0:
        print("no vectors: nothing was checked", file=sys.stderr)
        return 2
    print(f"{passed} passed, {failed} failed ({transactions} transactions: MAC1, MAC2, TAC each)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
