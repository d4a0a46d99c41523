# extpy selftest: run by a distribution's own python.exe (or, in tests, a CPython standing
# in for it) with -B and -X pycache_prefix, so that nothing is written into the folder.
# argv[1] is a JSON object: site (the folder's Lib/site-packages), imports (module names),
# tls (host, port, proxy, timeout, or null). Prints one line "EXTPY-SELFTEST <json>".
import json
import os
import sys

MARK = "EXTPY-SELFTEST "


def error_of(e):
    return {
        "type": type(e).__name__,
        "message": str(e),
        "winerror": getattr(e, "winerror", None),
    }


def add_site(site_dir):
    # The embeddable Python's ._pth puts Lib\site-packages on the path and imports site;
    # a stand-in run with -S gets the same folder (and its .pth files) here.
    norm = os.path.normcase(os.path.abspath(site_dir))
    if any(os.path.normcase(os.path.abspath(p)) == norm for p in sys.path if p):
        return "path"
    import site

    site.addsitedir(site_dir)
    return "addsitedir"


def load_error(name):
    # The text of "DLL load failed" is in the machine's language; loading the same file
    # with ctypes gives the Windows error number (126 missing dependency, 1260 AppLocker,
    # 4551 Application Control).
    try:
        import ctypes
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            return None
        ctypes.WinDLL(spec.origin)
    except OSError as e:
        return getattr(e, "winerror", None)
    except BaseException:
        return None
    return None


def try_imports(names):
    import importlib

    results = []
    for name in names:
        r = {"module": name, "ok": False, "file": None, "error": None}
        try:
            m = importlib.import_module(name)
            r["ok"] = True
            r["file"] = getattr(m, "__file__", None)
        except BaseException as e:  # an import can raise anything, SystemExit included
            r["error"] = error_of(e)
            if os.name == "nt" and "DLL load failed" in str(e):
                r["error"]["winerror"] = load_error(name)
        results.append(r)
    return results


def openssl_versions():
    out = {"ssl": None, "cryptography": None, "cryptography_version": None}
    try:
        import ssl

        out["ssl"] = ssl.OPENSSL_VERSION
    except BaseException:
        pass
    try:
        import cryptography

        out["cryptography_version"] = getattr(cryptography, "__version__", None)
        from cryptography.hazmat.backends.openssl.backend import backend

        out["cryptography"] = backend.openssl_version_text()
    except BaseException:
        pass
    return out


def trust():
    out = {"bundle": None, "truststore": False, "error": None}
    try:
        import ssl

        out["truststore"] = ssl.SSLContext.__module__.split(".")[0] == "truststore"
    except BaseException:
        pass
    try:
        import requests.certs

        out["bundle"] = requests.certs.where()
    except BaseException as e:
        out["error"] = error_of(e)
    return out


def connect(host, port, proxy, timeout):
    import socket

    if not proxy:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.create_connection((proxy["host"], proxy["port"]), timeout=timeout)
    request = "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n" % (host, port, host, port)
    if proxy.get("authorization"):
        request += "Proxy-Authorization: %s\r\n" % proxy["authorization"]
    sock.sendall((request + "\r\n").encode("ascii"))
    answer = b""
    while b"\r\n\r\n" not in answer and len(answer) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    status = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status.split()
    if len(parts) < 2 or parts[1] != "200":
        sock.close()
        raise ConnectionError("the proxy refused CONNECT %s:%d: %r" % (host, port, status))
    return sock


def tls(cfg, bundle, truststore):
    import base64
    import ssl

    host, port, timeout = cfg["host"], cfg["port"], cfg["timeout"]
    out = {"ok": False, "kind": None, "error": None, "version": None, "leaf": None}
    try:
        if truststore:
            # truststore replaced ssl.SSLContext: verification goes to the system store.
            ctx = ssl.create_default_context()
        else:
            ctx = ssl.create_default_context(cafile=bundle)
    except BaseException as e:
        out["kind"] = "bundle"
        out["error"] = error_of(e)
        return out
    try:
        with connect(host, port, cfg.get("proxy"), timeout) as sock:
            with ctx.wrap_socket(sock, server_hostname=host) as s:
                out["ok"] = True
                out["version"] = s.version()
    except ssl.SSLCertVerificationError as e:
        out["kind"] = "certificate"
        out["error"] = error_of(e)
        out["verify_code"] = getattr(e, "verify_code", None)
        # The leaf, fetched without verification, names the CA it leads to.
        try:
            plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            plain.check_hostname = False
            plain.verify_mode = ssl.CERT_NONE
            with connect(host, port, cfg.get("proxy"), timeout) as sock:
                with plain.wrap_socket(sock, server_hostname=host) as s:
                    der = s.getpeercert(binary_form=True)
                    out["leaf"] = base64.b64encode(der).decode("ascii") if der else None
        except BaseException:
            pass
    except ssl.SSLError as e:
        out["kind"] = "tls"
        out["error"] = error_of(e)
    except BaseException as e:
        out["kind"] = "connect"
        out["error"] = error_of(e)
    return out


def main():
    cfg = json.loads(sys.argv[1])
    report = {
        "python": {"version": sys.version.split()[0], "executable": sys.executable},
        "site": None,
        "imports": [],
        "openssl": None,
        "trust": None,
        "tls": None,
    }
    try:
        report["site"] = add_site(cfg["site"])
    except BaseException as e:
        report["site_error"] = error_of(e)
    report["imports"] = try_imports(cfg["imports"])
    report["openssl"] = openssl_versions()
    report["trust"] = trust()
    if cfg.get("tls"):
        t = report["trust"]
        report["tls"] = tls(cfg["tls"], t["bundle"], t["truststore"])
    sys.stdout.write(MARK + json.dumps(report) + "\n")
    sys.stdout.flush()


main()
