"""`decimal` values across the Python boundary, and jwt_sign/jwt_verify
round trips with the throwaway keys in tests/fixtures/jwt.

The oracle comparisons live in tests/oracle_golden/cases/decimal*.harn and
jwt.harn; these check what the golden files cannot: Python's
``decimal.Decimal`` conversion both ways and ES256 signing (0.9.11's ES256
signatures use a random nonce, so its tokens cannot be golden output).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import harnvm
from harnvm import HarnConversionError
from harnvm._native import _roundtrip

needs_core = pytest.mark.needs_core

KEYS = Path(__file__).resolve().parent / "fixtures" / "jwt"


def key(name: str) -> str:
    return (KEYS / name).read_text()


@pytest.mark.parametrize(
    ("text", "shown"),
    [("1.5", "1.5"), ("2.50", "2.50"), ("-0.001", "-0.001"), ("0", "0"), ("1234567890123456789012345678", "1234567890123456789012345678"), ("1E+3", "1000")],
)
def test_decimal_roundtrips_with_its_scale(text, shown):
    back = _roundtrip(Decimal(text))
    assert type(back) is Decimal
    # The same digits and scale (Harn decimals have no positive exponent: 1E+3 is 1000).
    assert str(back) == shown


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1E-29", "1" * 30, "0.00000000000000000000000000001"])
def test_decimals_a_harn_decimal_cannot_hold_are_refused(text):
    with pytest.raises(HarnConversionError):
        _roundtrip(Decimal(text))


@needs_core
def test_decimal_results_and_arguments():
    vm = harnvm.Vm(output=lambda _t: None)
    assert vm.run('fn main(harness: Harness) { return decimal("10") / 4 }') == Decimal("2.50")
    assert str(vm.run("fn main(harness: Harness) { return decimal(0.1) }")) == "0.1000000000000000055511151231"
    src = 'fn main(harness: Harness) { let d = run_inputs()["d"]\n return [type_of(d), d * 2, d == decimal("1.50")] }'
    assert vm.run(src, inputs={"d": Decimal("1.5")}) == ["decimal", Decimal("3.0"), True]


@needs_core
@pytest.mark.parametrize(("alg", "private", "public"), [("ES256", "es256_private.pem", "es256_public.pem"), ("RS256", "rs256_private.pem", "rs256_public.pem")])
def test_jwt_sign_then_verify(alg, private, public):
    vm = harnvm.Vm(output=lambda _t: None)
    src = """fn main(harness: Harness) {
  let i = run_inputs()
  let token = jwt_sign(i.alg, {sub: "user", n: 3, nested: {b: [1, 2.5], a: nil}}, i.private)
  return [token, jwt_verify(i.alg, token, i.public)]
}"""
    inputs = {"alg": alg, "private": key(private), "public": key(public)}
    token, verified = vm.run(src, inputs=inputs)
    assert verified == {"claims": {"sub": "user", "n": 3, "nested": {"a": None, "b": [1, 2.5]}}, "valid": True}
    if alg == "RS256":
        # PKCS#1 v1.5 signatures are deterministic (the golden case compares them with 0.9.11's).
        assert vm.run(src, inputs=inputs)[0] == token
    else:
        other = 'fn main(harness: Harness) { let i = run_inputs()\n return try { jwt_verify("ES256", i.token, i.key) } }'
        refused = vm.run(other, inputs={"token": token, "key": key("es256_other_public.pem")})
        assert refused == harnvm.HarnEnum("Result", "Err", ("jwt_verify: InvalidSignature",))
