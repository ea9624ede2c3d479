from conan import ConanFile


class Openssl(ConanFile):
    """OpenSSL, built the team's way: everything comes from openssl-tools."""

    name = "openssl"
    package_type = "library"
    description = "TLS and general-purpose cryptography library"
    license = "Apache-2.0"
    python_requires = "openssl-tools/1.2.4"
    python_requires_extend = "openssl-tools.OpensslBase"
