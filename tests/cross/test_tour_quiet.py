"""The tour's terminal shows the tour, not the frameworks' own C++ log lines
(TensorFlow's absl banner and oneDNN notice, CUDA warnings)."""
import os
import re
import subprocess
import sys

from multiparam.tour.quiet import native_logs_filtered

NOISE = re.compile(r"oneDNN custom operations|absl::InitializeLog|cuda|^[IWEF]\d{4} \d\d:\d\d:",
                   re.IGNORECASE | re.MULTILINE)


def test_native_log_lines_are_dropped_and_the_rest_passes(capfd):
    with native_logs_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written "
                    b"to STDERR\n"
                    b"I0000 00:00:1795700442.760299    5379 port.cc:153] oneDNN custom operations are on.\n"
                    b"W0101 12:00:00.000001 42 cuda_executor.cc:1] no cuda drivers\n")
        print("a Python warning still shows", file=sys.stderr)
        os.write(2, b"and so does anything else\n")
    assert capfd.readouterr().err == "a Python warning still shows\nand so does anything else\n"


def test_tour_command_prints_no_framework_log_lines(mxnet_python, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}   # not needed
    out = subprocess.run([sys.executable, "-m", "multiparam", "tour", "--step", "build",
                          "--no-html", "--no-notebooks", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "Step build" in out.stdout and "all OK" in out.stdout
    assert not NOISE.findall(out.stdout + out.stderr), out.stderr
