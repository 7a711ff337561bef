"""Bad input, a table of it, through the real command line: exit 2, one line naming the problem, nothing run.

Every case here must be refused before the source is unpacked, so the cache
directory stays empty and no run directory is made.
"""

from pathlib import Path

import pytest

from orchestrator.cli import main

PLAN_STEP = '[[step]]\nname = "a"\nargs = ["-a"]\nexpect = "pin"\n'

# (case id, arguments, what the file named {file} holds (or None), what the one line must say)
PLANS = [
    ("plan-unknown-top-key", 'bogus = 1\n' + PLAN_STEP, "unknown key 'bogus'"),
    ("plan-unknown-step-key", PLAN_STEP + "bogus_key = 1\n", "step a: unknown key 'bogus_key'"),
    ("plan-unknown-setup-key", PLAN_STEP + "[setup]\nhugetlb = 1\n", "setup: unknown key 'hugetlb'"),
    ("plan-unknown-matrix-key", '[matrix]\naxes = [[{name = "a", expect = "pin"}]]\nrepeat = 2\n',
     "matrix: unknown key 'repeat'"),
    ("plan-unknown-choice-key", '[matrix]\naxes = [[{name = "a", expect = "pin", arg = ["-a"]}]]\n',
     "unknown key 'arg'"),
    ("plan-args-not-a-list", '[[step]]\nname = "a"\nargs = "-a"\nexpect = "pin"\n', "args must be a list"),
    ("plan-args-numbers", '[[step]]\nname = "a"\nargs = ["-n", 512]\nexpect = "pin"\n', "list of strings"),
    ("plan-args-missing", '[[step]]\nname = "a"\nexpect = "pin"\n', "args is missing"),
    ("plan-timeout-string", PLAN_STEP + 'timeout = "10"\n', "timeout must be a int or float"),
    ("plan-timeout-negative", PLAN_STEP + "timeout = -1\n", "timeout must be more than 0"),
    ("plan-timeout-nan", "timeout = nan\n" + PLAN_STEP, "timeout must be more than 0"),
    ("plan-timeout-bool", PLAN_STEP + "timeout = true\n", "timeout must be a int or float"),
    ("plan-duplicate-names", PLAN_STEP + PLAN_STEP, "'a' is used more than once"),
    ("plan-name-with-space", '[[step]]\nname = "a b"\nargs = []\nexpect = "pin"\n', "name 'a b' must be"),
    ("plan-name-control-char", '[[step]]\nname = "a\\u0007b"\nargs = []\nexpect = "pin"\n', "name 'a\\x07b'"),
    ("plan-name-missing", '[[step]]\nargs = []\nexpect = "pin"\n', "name must be a str (it is missing)"),
    ("plan-empty", 'description = "nothing"\n', "needs at least one [[step]]"),
    ("plan-not-toml", "[[step]\nname = \n", "invalid plan (Expected"),
    ("plan-binary", b"\x00\x01\x02\xff", "invalid plan"),
    ("plan-step-not-table", "step = 5\n", "step must be a list"),
    ("plan-expect-unknown", '[[step]]\nname = "a"\nargs = []\nexpect = "maybe"\n', "expect must be one of"),
    ("plan-program-path", PLAN_STEP + 'program = "/bin/sh"\n', "program '/bin/sh' must be a program's name"),
    ("plan-arg-newline", '[[step]]\nname = "a"\nargs = ["x\\ny"]\nexpect = "pin"\n', "control characters"),
    ("plan-placeholder-unknown", '[[step]]\nname = "a"\nargs = ["{hug}"]\nexpect = "pin"\n',
     "unknown placeholder {hug}"),
    ("plan-placeholder-attribute", '[[step]]\nname = "a"\nargs = ["{huge.__class__}"]\nexpect = "pin"\n',
     "unknown placeholder"),
    ("plan-requires-unknown", PLAN_STEP + 'requires = ["gpu"]\n', "unknown requirement 'gpu'"),
    ("plan-thp-mode", PLAN_STEP + '[setup]\nthp = "sometimes"\n', "setup: thp must be one of"),
    ("plan-hugetlb-negative", PLAN_STEP + "[setup]\nhugetlb_mb = -1\n", "hugetlb_mb must be between"),
    ("plan-kconfig-bad", 'kconfig = ["LKDTM=y"]\n' + PLAN_STEP, "kconfig entry 'LKDTM=y'"),
    ("plan-before-kernel", PLAN_STEP + 'before_kernel = "soon"\n', "before_kernel must be a version"),
    ("plan-matrix-explosion",
     "[matrix]\naxes = [" + ", ".join(['[' + ", ".join(f'{{name = "c{i}", expect = "pin"}}' for i in range(10)) + ']']
                                       * 6) + "]\n",
     "more than 10000 combinations"),
]

FRAGMENTS = [
    ("kconfig-binary", b"\x7fELF\x02\x01\x01\x00\x00\x00", "a binary or oversized file"),
    ("kconfig-prose", b"CONFIG_A=y\nplease turn on KASAN\n", "line 2 is not a Kconfig line"),
    ("kconfig-not-utf8", b"CONFIG_A=\"\xff\xfe\"\n", "not UTF-8 text"),
    ("kconfig-bad-value", b"CONFIG_A=yes please\n", "line 1 is not a Kconfig line"),
]


def _cases():
    cases = [
        ("jobs-zero", ["run", "--jobs", "0"], None, "--jobs 0: give a number of jobs from 1"),
        ("jobs-negative", ["run", "--jobs", "-3"], None, "--jobs -3"),
        ("jobs-huge", ["build", "--jobs", "100000"], None, "--jobs 100000"),
        ("jobs-not-a-number", ["run", "--jobs", "many"], None, "invalid int value: 'many'"),
        ("boot-timeout-negative", ["run", "--boot-timeout", "-5"], None, "--boot-timeout -5.0: give a number"),
        ("boot-timeout-zero", ["run", "--boot-timeout", "0"], None, "--boot-timeout 0.0"),
        ("boot-timeout-nan", ["run", "--boot-timeout", "nan"], None, "--boot-timeout nan"),
        ("boot-timeout-inf", ["run", "--boot-timeout", "inf"], None, "--boot-timeout inf"),
        ("run-timeout-zero", ["run", "--run-timeout", "0"], None, "--run-timeout 0.0"),
        ("run-timeout-huge", ["run", "--run-timeout", "1e12"], None, "--run-timeout"),
        ("out-in-proc", ["run", "--out", "/proc/x"], None, "--out /proc/x: cannot write in /proc"),
        ("out-is-a-file", ["run", "--out", "{file}"], b"", "exists and is not a directory"),
        ("out-below-a-file", ["build", "--out", "{file}/sub"], b"", "is not a directory"),
        ("cache-in-proc", ["run", "--cache-dir", "/proc/x"], None, "--cache-dir /proc/x: cannot write in /proc"),
        ("cache-with-space", ["run", "--cache-dir", "{tmp}/a cache"], None, "Kbuild refuses paths with spaces"),
        ("cache-with-colon", ["build", "--cache-dir", "{tmp}/a:cache"], None, "Kbuild refuses paths with"),
        ("junit-in-proc", ["run", "--junit", "/proc/nope/j.xml"], None, "--junit /proc/nope/j.xml: cannot write"),
        ("junit-is-a-dir", ["run", "--junit", "{tmp}"], None, "is a directory; give a file name"),
        ("junit-below-a-file", ["run", "--junit", "{file}/j.xml"], b"", "is not a directory"),
        ("tree-with-space", ["run", "--kernel-src", "{tmp}/my linux"], None, "Kbuild refuses paths with spaces"),
        ("tree-with-colon", ["build", "--kernel-src", "{tmp}/linux:6.1"], None, "Kbuild refuses paths with"),
        ("tree-missing", ["run", "--kernel-src", "/nonexistent"], None, "no such directory"),
        ("selftests-tree-missing", ["run", "--selftests-from", "/nonexistent"], None,
         "--selftests-from /nonexistent: no such directory"),
        ("kconfig-missing", ["run", "--kconfig", "/nonexistent.config"], None, "no such file"),
        ("kconfig-add-no-value", ["run", "--kconfig-add", "DEBUG_VM"], None, "expected CONFIG_NAME=value"),
        ("kconfig-add-open-quote", ["run", "--kconfig-add", 'CONFIG_CMDLINE="x'], None, "expected CONFIG_NAME"),
        ("kconfig-add-escape", ["run", "--kconfig-add", 'CONFIG_CMDLINE="\x1b[2J"'], None, "expected CONFIG_NAME"),
        ("arch-unknown", ["run", "--arch", "sparc"], None, "unknown arch 'sparc'"),
        ("accel-unknown", ["run", "--accel", "hvf"], None, "invalid choice: 'hvf'"),
        ("plan-unknown", ["run", "--plan", "nosuch"], None, "--plan nosuch: no such plan"),
        ("plan-a-directory", ["run", "--plan", "{tmp}/dir.toml"], None, "no such plan"),
        ("step-unknown", ["run", "--plan", "pinning", "--step", "cow", "--step", "nosuch"], None,
         "--step nosuch: plan pinning has no such step; its steps: movable-pin_longterm,"),
        ("subcommand-unknown", ["gupvm", "--help"], None, "invalid choice: 'gupvm'"),
        ("doctor-cache-in-proc", ["doctor", "--cache-dir", "/proc/x"], None, "--cache-dir /proc/x: cannot write"),
        ("kcidb-in-proc", ["run", "--kcidb", "/proc/nope/k.json"], None, "--kcidb /proc/nope/k.json: cannot write"),
        ("kcidb-is-a-dir", ["run", "--kcidb", "{tmp}"], None, "is a directory; give a file name"),
        ("samples-zero", ["run", "--samples", "0"], None, "--samples 0: give a positive number"),
        ("clock-under-kvm", ["run", "--clock", "icount", "--accel", "kvm"], None, "--clock icount cannot run under"),
        # presubmit: every option checked before a checkout is read or anything built
        ("presubmit-fail-on-slower-negative", ["presubmit", "--kernel-src", "{tmp}", "--fail-on-slower", "-3"], None,
         "--fail-on-slower -3: give a percentage of 0 or more"),
        ("presubmit-fail-on-slower-nan", ["presubmit", "--kernel-src", "{tmp}", "--fail-on-slower", "nan"], None,
         "--fail-on-slower nan"),
        ("presubmit-samples-zero", ["presubmit", "--kernel-src", "{tmp}", "--samples", "0"], None, "--samples 0"),
        ("presubmit-jobs-zero", ["presubmit", "--kernel-src", "{tmp}", "--jobs", "0"], None, "--jobs 0"),
        ("presubmit-boot-timeout", ["presubmit", "--kernel-src", "{tmp}", "--boot-timeout", "-1"], None,
         "--boot-timeout -1.0"),
        ("presubmit-run-timeout", ["presubmit", "--kernel-src", "{tmp}", "--run-timeout", "0"], None,
         "--run-timeout 0.0"),
        ("presubmit-junit-in-proc", ["presubmit", "--kernel-src", "{tmp}", "--junit", "/proc/x/j.xml"], None,
         "--junit /proc/x/j.xml: cannot write"),
        ("presubmit-clock-under-kvm", ["presubmit", "--kernel-src", "{tmp}", "--clock", "icount", "--accel", "kvm"],
         None, "--clock icount cannot run under --accel kvm"),
        ("presubmit-out-in-proc", ["presubmit", "--kernel-src", "{tmp}", "--out", "/proc/x"], None,
         "--out /proc/x: cannot write"),
        ("presubmit-not-a-checkout", ["presubmit", "--kernel-src", "{tmp}"], None, "not a git checkout"),
        ("presubmit-plan-unknown", ["presubmit", "--kernel-src", "{tmp}", "--plan", "nosuch"], None, "not a git"),
        # bisect
        ("bisect-jobs-zero", ["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b", "--jobs", "0"], None,
         "--jobs 0"),
        ("bisect-boot-timeout", ["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b", "--boot-timeout",
                                 "0"], None, "--boot-timeout 0.0"),
        ("bisect-run-timeout", ["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b", "--run-timeout",
                                "inf"], None, "--run-timeout inf"),
        ("bisect-junit-in-proc", ["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b", "--junit",
                                  "/proc/x/j.xml"], None, "--junit /proc/x/j.xml: cannot write"),
        ("bisect-resume-missing", ["bisect", "--resume", "{tmp}/nosuch.json"], None, "--resume"),
        ("bisect-resume-not-state", ["bisect", "--resume", "{file}"], b"{}", "not a gupvm bisect.json"),
        ("bisect-arch-all", ["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b", "--arch", "all"], None,
         "bisect one arch at a time"),
        ("bisect-out-in-proc", ["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b", "--out", "/proc/x"],
         None, "--out /proc/x: cannot write"),
        # compare and merge
        ("compare-fail-on-slower-negative", ["compare", "{tmp}", "{tmp}", "--fail-on-slower", "-1"], None,
         "--fail-on-slower -1"),
        ("compare-junit-in-proc", ["compare", "{tmp}", "{tmp}", "--junit", "/proc/x/j.xml"], None, "--junit"),
        ("compare-out-in-proc", ["compare", "{tmp}", "{tmp}", "--out", "/proc/x"], None, "--out /proc/x"),
        ("compare-no-runs", ["compare", "{tmp}", "{tmp}"], None, "no results.json"),
        ("merge-kcidb-in-proc", ["merge", "{tmp}/merged", "{tmp}", "--kcidb", "/proc/x/k.json"], None, "--kcidb"),
        ("merge-out-in-proc", ["merge", "/proc/x", "{tmp}"], None, "OUT /proc/x: cannot write"),
        ("merge-not-a-run", ["merge", "{tmp}/merged", "{tmp}"], None, "not a gupvm run directory"),
        # cells and cache
        ("cells-jobs-zero", ["cells", "--jobs", "0"], None, "--jobs 0"),
        ("cells-arch-unknown", ["cells", "--arch", "sparc"], None, "unknown arch 'sparc'"),
        ("cells-plan-unknown", ["cells", "--plan", "nosuch"], None, "--plan nosuch: no such plan"),
        ("cells-shard-bad", ["cells", "--shard", "3/2"], None, "--shard 3/2"),
        ("cache-older-than-negative", ["cache", "prune", "--older-than", "-1"], None, "--older-than -1"),
        ("cache-older-than-nan", ["cache", "prune", "--older-than", "nan"], None, "--older-than nan"),
        ("cache-command-in-proc", ["cache", "--cache-dir", "/proc/x"], None, "--cache-dir /proc/x: cannot write"),
        ("cache-action-unknown", ["cache", "empty"], None, "invalid choice: 'empty'"),
    ]
    cases += [(name, ["run", "--plan", "{file}"], text.encode("utf-8", "surrogateescape")
               if isinstance(text, str) else text, said) for name, text, said in PLANS]
    cases += [(name, ["run", "--kconfig", "{file}"], data, said) for name, data, said in FRAGMENTS]
    return cases


CASES = _cases()


def test_the_table_is_big_enough():
    assert len(CASES) >= 30
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("args, content, complaint", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_exits_2_with_one_line_and_runs_nothing(tmp_path: Path, capsys, args, content, complaint):
    work = tmp_path / "work"
    work.mkdir()
    (work / "dir.toml").mkdir()
    file = work / ("input.toml" if "--plan" in args else "input")
    if content is not None:
        file.write_bytes(content)
    cache = tmp_path / "cache"
    argv = [arg.format(tmp=work, file=file) for arg in args]
    if argv[0] in ("run", "build", "cells", "presubmit", "bisect", "cache"):
        argv += [] if "--cache-dir" in argv else ["--cache-dir", str(cache)]
    if argv[0] in ("run", "build", "cells", "presubmit", "bisect", "compare"):
        argv += [] if "--out" in argv else ["--out", str(tmp_path / "out")]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gupvm: error: "), captured.err
    assert complaint in lines[0]
    assert captured.out == ""
    assert not (tmp_path / "out").exists()  # no run directory
    assert not cache.exists() or not any(cache.iterdir())  # nothing unpacked or built
    assert sorted(path.name for path in work.iterdir()) == sorted({"dir.toml"} | ({file.name} if content is not None
                                                                                  else set()))


def test_unknown_subcommand_points_at_the_right_help(capsys):
    assert main(["frobnicate"]) == 2
    assert "(see 'gupvm --help')" in capsys.readouterr().err
    assert main(["run", "--frob"]) == 2
    assert "unrecognized arguments: --frob (see 'gupvm --help')" in capsys.readouterr().err
