"""A certificate authority made for a test with the openssl command: a CA, a server certificate for the names
given, and a client certificate, all in a temporary directory."""

import os
import ssl
import subprocess
import tempfile

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}: {result.stderr}"


class CertAuthority:
    def __init__(self, names=("DNS:localhost", "IP:127.0.0.1"), cn="wsgate test CA"):
        self.dir = tempfile.mkdtemp(prefix="wsgate-ca-")
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        _run(["openssl", "req", "-x509", *EC_KEY, "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
              "-subj", "/CN=" + cn])
        self.cert, self.key = self.issue("server", names)
        self.client_cert, self.client_key = self.issue("client", (), client=True)

    def issue(self, name, names, client=False):
        """A certificate signed by this CA with `names` as subjectAltName; returns (cert, key) paths."""
        cert = os.path.join(self.dir, name + ".pem")
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            if names:
                f.write("subjectAltName=" + ",".join(names) + "\n")
            f.write("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth") + "\n")
        _run(["openssl", "req", *EC_KEY, "-keyout", key, "-out", csr, "-subj", "/CN=wsgate test " + name])
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
              "-out", cert, "-days", "2", "-extfile", ext])
        return cert, key

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def redis_tls(self, auth_clients=False):
        """The `tls` argument of harness.RedisServer."""
        return {"cert": self.cert, "key": self.key, "ca": self.ca, "auth_clients": auth_clients,
                "client_cert": self.client_cert, "client_key": self.client_key}
