"""The shape every integration test here shares."""

def integration_test(name, data, size = "medium"):
    """A shell test under tests/, with lib.sh, run alone and outside the sandbox.

    `exclusive`: these tests spin pollers (snapd workers, dpdk-testpmd) and the machines have two
    cores. `no-sandbox`: the sandbox mounts /run read-only, and network namespaces live there.
    """
    native.sh_test(
        name = name,
        size = size,
        srcs = [name + ".sh"],
        data = data,
        tags = ["exclusive", "no-sandbox"],
        deps = [":lib"],
    )
