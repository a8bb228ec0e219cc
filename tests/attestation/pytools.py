"""pytools.py - the pieces the real CLI needs to run Python dynamic providers, in a cache outside the repo.

`pulumi-resource-pulumi-python` (the dynamic provider plugin) and `pulumi-language-python-exec` are
scripts shipped in the Pulumi Python SDK's Go module; they are taken from the module zip served for
the pinned version (`go mod download`) and put beside a hard link (or copy) of the pinned `pulumi`,
so that the CLI finds them next to its own executable. Prints that directory (its bin/ holds all
three) when run as a script.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cli"))

VERSION = os.environ.get("PULUMI_VERSION", "v3.259.0")
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
SCRIPTS = {"pulumi-resource-pulumi-python": "python/dist", "pulumi-language-python-exec": "python/cmd"}


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pulumi-state", "python-tools-" + VERSION)


def sdk_module_dir():
    """The unpacked SDK module of VERSION (downloaded through the Go module proxy when not cached)."""
    work = tempfile.mkdtemp(prefix="pysdk-mod-")
    try:
        subprocess.run(["go", "mod", "init", "pytools"], cwd=work, check=True, capture_output=True)
        out = subprocess.run(["go", "mod", "download", "-json", "%s@%s" % (SDK_MODULE, VERSION)], cwd=work,
                             check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = json.loads(out)
    if info.get("Error"):
        raise RuntimeError("go mod download %s@%s: %s" % (SDK_MODULE, VERSION, info["Error"]))
    return info["Dir"]


def ensure(cli_dir=None):
    """The directory whose bin/ has pulumi and the two Python scripts; made once per version."""
    root = cache_dir()
    bindir = os.path.join(root, "bin")
    wanted = ["pulumi"] + list(SCRIPTS)
    if all(os.access(os.path.join(bindir, n), os.X_OK) for n in wanted):
        return root
    if cli_dir is None:
        import clilib
        cli_dir = clilib.cli_dir()
    os.makedirs(bindir, exist_ok=True)
    mod = sdk_module_dir()
    for name, sub in SCRIPTS.items():
        src = os.path.join(mod, sub, name)
        if not os.path.isfile(src):
            raise RuntimeError("%s is not in %s@%s (looked in %s)" % (name, SDK_MODULE, VERSION, sub))
        tmp = os.path.join(bindir, name + ".tmp")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(bindir, name))
    tmp = os.path.join(bindir, "pulumi.tmp")
    if os.path.exists(tmp):
        os.unlink(tmp)
    try:
        os.link(os.path.join(cli_dir, "pulumi"), tmp)
    except OSError:
        shutil.copy2(os.path.join(cli_dir, "pulumi"), tmp)
    os.replace(tmp, os.path.join(bindir, "pulumi"))
    return root


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else None))
