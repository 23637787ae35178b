"""The direct path's SigV4 signature, against botocore's."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("sign_payload", [False, True])
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE/token+with=chars"])
def test_sigv4_headers_are_the_ones_botocore_signs(
    monkeypatch: pytest.MonkeyPatch, sign_payload: bool, token: str | None
) -> None:
    """The direct path's own SigV4 signer gives, at the same instant, exactly the headers (Authorization
    included) that botocore's S3SigV4Auth gives, for every request shape the data path sends."""
    import datetime as dt

    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from hdh_migrate.stores import sigv4

    instants = [dt.datetime(2026, 11, 24, 13, 5, 9, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=dt.UTC)]
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)

    class Botocore(S3SigV4Auth):
        def _should_sha256_sign_payload(self, request):  # the rule S3Direct applies (payload_signing setting)
            return sign_payload

    requests = [
        (
            "PUT",
            "http://127.0.0.1:8333/hdh/ab/x%20y/%C3%BC.bin",
            {
                "Content-Type": "text/csv",
                "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
                "x-amz-meta-hdh-sha256": "ab" * 32,
                "x-amz-meta-note": "  two   spaces  ",
            },
            b"x" * 70_000,
        ),
        (
            "PUT",
            "http://127.0.0.1:8333/hdh/k?partNumber=12&uploadId=2~abc%2Fdef",
            {"x-amz-checksum-crc32c": "yZRlqg=="},
            memoryview(bytearray(b"part bytes")),
        ),
        (
            "GET",
            "http://127.0.0.1:8333/hdh?list-type=2&prefix=a%2Fb&encoding-type=url&max-keys=1000"
            "&continuation-token=abc%3D%3D",
            {},
            None,
        ),
        (
            "POST",
            "http://127.0.0.1:8333/hdh/k?uploads",
            {"x-amz-meta-a": "1", "x-amz-checksum-algorithm": "CRC32C"},
            None,
        ),
        ("HEAD", "http://127.0.0.1:8333/hdh/k", {"Range": "bytes=0-9", "If-Match": '"abc"'}, b""),
        ("DELETE", "https://bucket.s3.fr-par.scw.cloud/k?uploadId=u", {"User-Agent": "hdh"}, None),
        (
            "GET",
            "https://s3.example.org:8443/hdh/k",
            {"x-amz-server-side-encryption-customer-algorithm": "AES256"},
            None,
        ),
    ]
    signer = sigv4.S3Signer(creds, "eu-west-3", sign_payload=sign_payload)
    for instant in instants:  # one signer across two dates: its cached signing key must follow the date
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda instant=instant: instant)
        monkeypatch.setattr(sigv4, "_now", lambda instant=instant: instant.timetuple())
        for method, url, headers, body in requests:
            req = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
            Botocore(creds.get_frozen_credentials(), "s3", "eu-west-3").add_auth(req)
            expected = dict(req.headers.items())
            ours = signer.headers(method, url, headers, body, host=sigv4.host_header(url))
            assert ours == expected, (method, url)
