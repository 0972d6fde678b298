"""Fetch axe-core (the accessibility engine the browser tests run) from the npm registry.

``make test`` runs this once; it writes ``axe.min.js`` to the path given, after checking the
tarball against the integrity hash npm publishes, so the tests run exactly the audited file.
Needs no Node: the tarball is read with the standard library.
"""

import base64
import hashlib
import io
import pathlib
import sys
import tarfile
import urllib.request

VERSION = "4.10.3"
TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
# `npm view axe-core@4.10.3 dist.integrity`
INTEGRITY = (
    "sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs"
    "/PbZhideTcEg=="
)


def main(target: str) -> None:
    with urllib.request.urlopen(TARBALL, timeout=60) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        sys.exit(f"axe-core {VERSION}: the tarball's hash {digest} is not {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        script = archive.extractfile("package/axe.min.js").read()
    path = pathlib.Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(script)
    print(f"axe-core {VERSION} → {path}")


if __name__ == "__main__":
    main(sys.argv[1])
