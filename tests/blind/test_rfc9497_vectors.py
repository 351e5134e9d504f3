"""The OPRF library against RFC 9497's own test vectors (Appendix A.1.2,
ristretto255-SHA512, VOPRF mode): key derivation, BlindEvaluate and the protocol output.

The vectors' proofs use a fixed proof-random scalar and a fixed blind, which the library's
API (rightly) does not let a caller choose; its proofs are checked by verification instead:
they verify with the derived public key and fail with any other (tests/blind/test_resolve.py,
tests/security/test_blind_attacks.py)."""

from __future__ import annotations

import pytest

from shieldwall.keys.oprf import OprfKey

voprf = pytest.importorskip("voprf")
from voprf import ristretto  # noqa: E402

SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
PK = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e"

VECTORS = [  # Input, BlindedElement, EvaluationElement, Output
    ("00",
     "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
     "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
     "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
     "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"),
    ("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
     "cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c",
     "60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468",
     "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
     "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6"),
]
# Test vector 3 (batch of 2): the second input's blinded and evaluated elements
BATCH_BLINDED = ["863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
                 "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654"]
BATCH_EVALUATED = ["aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
                   "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a"]


@pytest.fixture(scope="module")
def server() -> ristretto.Evaluator:
    return ristretto.Evaluator.from_seed(SEED, KEY_INFO)


def test_derive_key_pair(server):
    assert bytes(server.public_key.serialize()).hex() == PK


@pytest.mark.parametrize(("inp", "blinded", "evaluated", "output"), VECTORS)
def test_blind_evaluate_and_output(server, inp, blinded, evaluated, output):
    answer = bytes(server.evaluate(ristretto.BlindedInput.deserialize(
        bytes.fromhex(blinded))).serialize())
    assert len(answer) == 64 + 32  # the proof (c, s), then the evaluated element
    assert answer[64:].hex() == evaluated
    assert bytes(server.evaluate_known_input(bytes.fromhex(inp))).hex() == output


@pytest.mark.parametrize(("inp", "blinded", "evaluated", "output"), VECTORS)
def test_online_protocol_meets_the_vector_output(server, inp, blinded, evaluated, output):
    client, blind = ristretto.Client.blind(bytes.fromhex(inp))
    answer = server.evaluate(blind)
    assert bytes(client.finalize(answer, server.public_key)).hex() == output


def test_batch_vector(server):
    batch = [ristretto.BlindedInput.deserialize(bytes.fromhex(b)) for b in BATCH_BLINDED]
    answer = bytes(server.evaluate_batch(batch).serialize())
    assert len(answer) == 64 + 2 * 32  # one proof for the whole batch, then the elements
    assert [answer[64:96].hex(), answer[96:].hex()] == BATCH_EVALUATED


def test_node_keys_derive_by_the_rfc():
    """Our epoch keys are RFC DeriveKeyPair(seed, info) with the epoch in `info`."""
    key = OprfKey(1, SEED)
    ours = key.evaluator()
    rfc = ristretto.Evaluator.from_seed(SEED, b"shieldwall blind matching, key epoch 1")
    assert bytes(ours.public_key.serialize()) == bytes(rfc.public_key.serialize())
    assert OprfKey(2, SEED).public_key != key.public_key
