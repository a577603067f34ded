"""Print requirements-lock.txt from a venv: exact versions, CUDA-only wheels marked Linux x86_64 only."""

import subprocess
import sys

venv = sys.argv[1]
frozen = subprocess.run([f"{venv}/bin/python", "-m", "pip", "freeze", "--exclude-editable"],
                        capture_output=True, text=True, check=True).stdout.split()
LINUX_ONLY = ("nvidia-", "cuda-", "triton")
print("# Exact versions for reproducible classrooms; regenerate with `make lock`.")
print("# torch 2.14.1 + torchvision 0.29.1 is the pair known to work together (see README).")
print("# Includes the optional `pretrained` extra (offline EfficientNet-Lite0) so notebooks 05-06 run offline,")
print("# `distributed` (Ray, so CI exercises RayExecutor) and `docs` (Sphinx, MyST-NB and the theme for `make site`).")
for line in sorted(frozen, key=str.lower):
    if line.lower().startswith("dfl-toolkit") or line.lower().startswith("dfl_toolkit"):
        continue
    linux_only = line.lower().startswith(LINUX_ONLY)
    marker = ' ; sys_platform == "linux" and platform_machine == "x86_64"' if linux_only else ""
    print(line + marker)
