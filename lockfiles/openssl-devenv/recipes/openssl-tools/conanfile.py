"""openssl-tools: what every OpenSSL recipe of the team shares.

Recipes extend it with

    python_requires = "openssl-tools/1.2.4"
    python_requires_extend = "openssl-tools.OpensslBase"

and get the Configure target and options for the profile in use, the FIPS option, the
security gates every build passes before it starts, and a build/package flow for OpenSSL's
own Configure + make.
"""
import os

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.files import chdir, get
from conan.tools.scm import Version

# Configure targets by (os, arch) of the profile.
TARGETS = {
    ("Linux", "x86_64"): "linux-x86_64",
    ("Linux", "armv8"): "linux-aarch64",
    ("Macos", "x86_64"): "darwin64-x86_64-cc",
    ("Macos", "armv8"): "darwin64-arm64-cc",
    ("Windows", "x86_64"): "VC-WIN64A",
}

# Protocols and algorithms the team never ships.
ALWAYS_DISABLED = ["no-ssl3", "no-weak-ssl-ciphers", "no-md2", "no-rc5"]


def configure_target(conanfile):
    """The OpenSSL Configure target for the profile's os and arch."""
    key = (str(conanfile.settings.os), str(conanfile.settings.arch))
    if key not in TARGETS:
        raise ConanInvalidConfiguration(f"openssl-tools has no Configure target for {key}")
    return TARGETS[key]


def configure_options(conanfile):
    """Configure arguments for the recipe's options (shared, fips, tests) and the team policy."""
    opts = conanfile.options
    args = [configure_target(conanfile)]
    args.append("shared" if opts.get_safe("shared") else "no-shared")
    if opts.get_safe("fips"):
        args.append("enable-fips")
    if not opts.get_safe("tests", False):
        args.append("no-tests")
    if str(conanfile.settings.build_type) == "Debug":
        args.append("--debug")
    return args + ALWAYS_DISABLED


def security_gates(conanfile):
    """Refuse configurations the team's security policy forbids, before anything is built."""
    version = Version(conanfile.version)
    if version < "3.0":
        raise ConanInvalidConfiguration("OpenSSL before 3.0 is out of support")
    if conanfile.options.get_safe("fips") and conanfile.options.get_safe("shared") is False \
            and str(conanfile.settings.os) == "Windows":
        raise ConanInvalidConfiguration("the FIPS provider on Windows needs shared=True")


class OpensslBase:
    """Base recipe: extend it (python_requires_extend) to build OpenSSL with Configure + make."""

    settings = "os", "arch", "compiler", "build_type"
    options = {"shared": [True, False], "fips": [True, False], "tests": [True, False]}
    default_options = {"shared": False, "fips": False, "tests": False}

    def validate(self):
        security_gates(self)

    def source(self):
        get(self, **self.conan_data["sources"][self.version], strip_root=True)

    def build(self):
        args = configure_options(self)
        self.output.info("Configure " + " ".join(args))
        with chdir(self, self.source_folder):
            self.run("perl Configure " + " ".join(args) + " --prefix=/ --openssldir=/ssl --libdir=lib")
            self.run(f"make -j{os.cpu_count() or 1}")

    def package(self):
        with chdir(self, self.source_folder):
            self.run(f"make install_sw DESTDIR={self.package_folder}")

    def package_info(self):
        self.cpp_info.libs = ["ssl", "crypto"]
        if str(self.settings.os) == "Linux":
            self.cpp_info.system_libs = ["dl", "pthread"]


class OpensslTools(ConanFile):
    name = "openssl-tools"
    version = "1.2.4"
    package_type = "python-require"
    description = "Shared build helpers, Configure options and security gates for OpenSSL recipes"
    license = "Apache-2.0"
