"""The one TLS helper every backend uses: local files checked first, one context built.

A CA file, client certificate or key that is missing, unreadable or not PEM is
a local problem, so it is exit 2 naming the file (never "is the server
running?", never a driver's message without the file's name).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import replace

from qctl.errors import LocalFileError
from qctl.options import TLSFiles

ROLES = (("ca_file", "CA file"), ("cert_file", "client certificate"), ("key_file", "client key"))


def checked(files: TLSFiles) -> TLSFiles:
    """``files``, after making sure each one named can be read."""
    for attribute, role in ROLES:
        path = getattr(files, attribute)
        if path is None:
            continue
        expanded = os.path.expanduser(path)
        try:
            with open(expanded, "rb"):
                pass
        except OSError as exc:
            raise LocalFileError(f"cannot read the TLS {role} {path!r}: {exc.strerror}",
                                 hint=f"check {attribute} in the profile or URL") from None
        if os.path.isdir(expanded):
            raise LocalFileError(f"the TLS {role} {path!r} is a directory", hint=f"check {attribute}")
        files = replace(files, **{attribute: expanded})
    return files


def context(files: TLSFiles) -> ssl.SSLContext:
    """A client context: the CA file (else the system's), the client certificate, and ``verify``."""
    files = checked(files)
    try:
        ctx = ssl.create_default_context(cafile=files.ca_file)
    except (ssl.SSLError, ValueError) as exc:
        raise LocalFileError(f"the TLS CA file {files.ca_file!r} holds no usable certificate: {_why(exc)}") from None
    if files.cert_file or files.key_file:
        if not files.cert_file:
            raise LocalFileError(f"a client key ({files.key_file!r}) needs a client certificate (cert_file)")
        try:
            ctx.load_cert_chain(files.cert_file, files.key_file)
        except ssl.SSLError as exc:
            raise LocalFileError(f"the TLS client certificate {files.cert_file!r} or key {files.key_file!r} "
                                 f"cannot be used: {_why(exc)}") from None
    if not files.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _why(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).lower().replace("_", " ")


def explain(text: str, files: TLSFiles | None = None) -> str | None:
    """A hint for a TLS failure that a driver reported in ``text``, else None (``files``: what was given).

    Drivers word these as connection errors ("Error 1 connecting to...", "cannot reach..."), whose
    usual hint ("is the server running?") sends an operator the wrong way: the server answered,
    and the handshake is what failed.
    """
    upper = text.upper()
    if "CERTIFICATE_VERIFY_FAILED" in upper:
        if "MISMATCH" in upper:
            return "TLS: the server's certificate does not name the host in the URL"
        if files is None:
            trusted = "the CA file given (ca_file) or, without one, by the system's CAs"
        else:
            trusted = f"the CA file {files.ca_file!r}" if files.ca_file else "the system's CAs (no ca_file given)"
        return f"TLS: the server's certificate is not signed by {trusted}; set ca_file to the CA that signed it"
    if "CERTIFICATE_REQUIRED" in upper:
        return "TLS: the server asks for a client certificate; set cert_file and key_file in the profile"
    if "EOF OCCURRED IN VIOLATION OF PROTOCOL" in upper and (files is None or not files.cert_file):
        return ("TLS: the server ended the handshake; if it asks for client certificates, set cert_file and "
                "key_file in the profile")
    if "WRONG_VERSION_NUMBER" in upper or "UNKNOWN_PROTOCOL" in upper:
        return "TLS: that port does not speak TLS; check the port, or use the plain scheme"
    if "SSL" in upper and ("ALERT" in upper or "HANDSHAKE" in upper):
        return "TLS: the handshake failed; check ca_file, cert_file and key_file"
    return None
