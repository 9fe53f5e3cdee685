"""Service-account tokens: JWTs signed with the instance's key, as Kubernetes issues them.

The signing key (ES256, P-256) is made at the first start in the instance
home (`Home.service_account_key`, 0600) and reused, so tokens outlive a
restart. A token carries the claims of Kubernetes' bound tokens: `iss`
(`ISSUER`), `sub` (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`,
`iat`, `nbf`, `jti` and `kubernetes.io` with the namespace, the
ServiceAccount's name and uid and, for a bound token, the Pod or Secret's.
Kubernetes adds `warnafter` only when it stretches a kubelet's 3607-second
token to a year for legacy clients; minik never stretches, so never adds it.

`TokenSigner.verify` checks what the token itself proves: signature,
issuer, audience and time, on the signer's clock (a test's manual one).
That the ServiceAccount and the bound object still exist with those uids
is the authenticator's check (`apiserver.authn`), which reads the store.
PyJWT's errors are mapped to `TokenError` here and nowhere else.

For tests only, the environment variable `MINIK_TEST_MAX_TOKEN_EXPIRATION`
(seconds) caps every token's lifetime, as Kubernetes'
`--service-account-max-token-expiration` does, but below its floor, so
that an end-to-end test sees the node agent renew a pod's token.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from minik.api.names import CLUSTER_DOMAIN
from minik.home import Home, write_private

ISSUER = f"https://kubernetes.default.svc.{CLUSTER_DOMAIN}"
API_AUDIENCES: tuple[str, ...] = (ISSUER,)
"""The audiences the API accepts; Kubernetes' default `--api-audiences` is the issuer."""
ALGORITHM = "ES256"
MIN_EXPIRATION = 600
DEFAULT_EXPIRATION = 3600
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
MAX_EXPIRATION_ENV = "MINIK_TEST_MAX_TOKEN_EXPIRATION"


def max_expiration_for_tests() -> int | None:
    """The test-only cap on token lifetimes, when `MINIK_TEST_MAX_TOKEN_EXPIRATION` is set."""
    value = os.environ.get(MAX_EXPIRATION_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


class TokenError(Exception):
    """A token that is not a valid service-account token of this API."""


@dataclass(frozen=True, slots=True)
class BoundObject:
    """The Pod or Secret a token is bound to: it is valid only while that object lives."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says about its holder."""

    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    expires: int
    bound: BoundObject | None = None

    @property
    def username(self) -> str:
        return f"{SERVICE_ACCOUNT_PREFIX}{self.namespace}:{self.name}"


def new_signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def load_or_create_key(home: Home) -> ec.EllipticCurvePrivateKey:
    """The instance's signing key, made (0600) on first use."""
    path = home.service_account_key
    if not path.exists():
        key = new_signing_key()
        write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: the service-account key is not an elliptic-curve key")
    return loaded


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise TokenError(f"the token's {what} is missing")
    return value


class TokenSigner:
    """Issues and verifies the tokens of one key, on one clock."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, *,
                 clock: Callable[[], float] = time.time,
                 max_expiration: int | None = None) -> None:
        self.key = key
        self.clock = clock
        self.max_expiration = max_expiration
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64(hashlib.sha256(public).digest())
        """As Kubernetes names its keys: the SHA-256 of the public key's DER, base64url."""

    def issue(self, *, namespace: str, name: str, uid: str, audiences: Sequence[str],
              seconds: int, bound: BoundObject | None = None) -> tuple[str, int]:
        """A token for the ServiceAccount `namespace`/`name`, and when it expires."""
        now = int(self.clock())
        if self.max_expiration is not None:
            seconds = min(seconds, self.max_expiration)
        expires = now + seconds
        private: dict[str, Any] = {"namespace": namespace,
                                   "serviceaccount": {"name": name, "uid": uid}}
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        claims = {"aud": list(audiences), "exp": expires, "iat": now, "nbf": now,
                  "iss": ISSUER, "jti": str(uuid.uuid4()),
                  "sub": f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}", "kubernetes.io": private}
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return token, expires

    def verify(self, token: str, audiences: Sequence[str] = API_AUDIENCES) -> TokenClaims:
        """The claims of a token this signer issued, unexpired, for one of `audiences`."""
        try:
            claims = jwt.decode(
                token, self.key.public_key(), algorithms=[ALGORITHM], issuer=ISSUER,
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "require": ["exp", "iat", "nbf", "sub"]})
        except jwt.PyJWTError as e:
            raise TokenError(f"invalid service-account token: {e}") from e
        aud = claims.get("aud")
        token_audiences = tuple([aud] if isinstance(aud, str) else aud or ())
        if not set(token_audiences) & set(audiences):
            raise TokenError("the token's audience is not one the API accepts")
        now = self.clock()
        if not isinstance(claims["exp"], int) or now >= claims["exp"]:
            raise TokenError("the token has expired")
        if not isinstance(claims["nbf"], int) or now < claims["nbf"]:
            raise TokenError("the token is not valid yet")
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            raise TokenError("the token names no service account")
        account = private.get("serviceaccount") or {}
        bound = None
        for kind in ("Pod", "Secret"):
            ref = private.get(kind.lower())
            if isinstance(ref, dict):
                bound = BoundObject(kind, _str(ref.get("name"), f"{kind} name"),
                                    _str(ref.get("uid"), f"{kind} uid"))
        return TokenClaims(namespace=_str(private.get("namespace"), "namespace"),
                           name=_str(account.get("name"), "service account name"),
                           uid=_str(account.get("uid"), "service account uid"),
                           audiences=token_audiences, expires=claims["exp"], bound=bound)

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (`/openid/v1/jwks`)."""
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "use": "sig", "alg": ALGORITHM, "kid": self.key_id}]}
