"""What a manifest may hold (checked before anything installs), which manifest a function has,
and what its cache key depends on."""

from __future__ import annotations

import json
import os

import pytest

from core.deps.cache import cache_key
from core.deps.manifest import Manifest, find_manifest, manifest_problems
from core.errors import InvalidInput
from core.models import parse_patch, parse_spec


@pytest.mark.parametrize(
    "line,why",
    [
        ("-e git+https://github.com/x/y#egg=y", "the option -e"),
        ("--index-url https://evil.example/simple", "the option --index-url"),
        ("--extra-index-url=https://evil.example/simple", "the option --extra-index-url"),
        ("-r other.txt", "the option -r"),
        ("--find-links /tmp/x", "the option --find-links"),
        ("foo @ https://evil.example/foo.whl", "URL and VCS requirements are refused"),
        ("git+https://github.com/x/y", "URL and VCS requirements are refused"),
        ("./local/pkg", "local paths are refused"),
        ("/abs/pkg.whl", "local paths are refused"),
        ("requests==2 --install-option=x", "only --hash may follow"),
        ("requests>=2 \\", "line continuations"),
        ("not a requirement!!", "not a requirement"),
    ],
)
def test_refused_requirements_name_the_line_and_the_fix(line, why):
    problems = manifest_problems("python", f"ok-package==1.0\n{line}\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"line 2 ({line[:60]!r})") and why in problems[0], problems


def test_plain_requirements_pass():
    text = (
        "# comment\nrequests==2.32.3  # pinned\nnumpy>=1.26,<3\nrich[jupyter]~=13.0\n"
        "tomli; python_version < '3.11'\n"
        "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n"
    )
    assert manifest_problems("python", text) == []


@pytest.mark.parametrize(
    "spec,kind",
    [
        ("git+https://github.com/x/y.git", "git dependencies"),
        ("github:x/y", "git dependencies"),
        ("x/y", "git dependencies"),
        ("https://evil.example/y.tgz", "URL dependencies"),
        ("file:../y", "path dependencies"),
        ("link:../y", "path dependencies"),
    ],
)
def test_refused_npm_specs(spec, kind):
    problems = manifest_problems("nodejs", json.dumps({"dependencies": {"ok": "^1.0.0", "y": spec}}))
    assert len(problems) == 1 and problems[0].startswith(f"dependencies.y: {kind} are refused"), problems


def test_npm_ranges_tags_and_aliases_pass():
    doc = {
        "dependencies": {
            "a": "^1.2.3",
            "b": "~2.0 || >=3",
            "c": "latest",
            "@scope/d": "1.x",
            "e": "npm:lodash@^4.17.0",
            "f": "*",
        }
    }
    assert manifest_problems("nodejs", json.dumps(doc)) == []


def test_npm_manifest_shape_problems():
    assert "is not valid JSON" in manifest_problems("nodejs", "{nope")[0]
    assert "must be a package.json object" in manifest_problems("nodejs", "[1]")[0]
    assert "is not an npm package name" in manifest_problems("nodejs", '{"dependencies": {"../x": "1"}}')[0]
    lock = {"packages": {"": {}, "node_modules/y": {"resolved": "file:../y"}}}
    problems = manifest_problems("nodejs", '{"dependencies": {"y": "1"}}', json.dumps(lock))
    assert problems and "git, path and linked packages are refused" in problems[0]


def test_go_dependencies_field_is_refused_with_the_way_to_do_it():
    with pytest.raises(InvalidInput) as exc:
        parse_spec({"name": "g", "runtime": "go", "code": "x", "dependencies": "github.com/x/y v1"})
    assert exc.value.errors[0].field == "dependencies"
    assert "go.mod" in exc.value.errors[0].message
    with pytest.raises(InvalidInput):
        find_manifest("go", "require x v1", {})
    assert find_manifest("go", "", {"go.mod": "module x"}) is None


def test_a_bad_manifest_is_a_field_error_on_create():
    with pytest.raises(InvalidInput) as exc:
        parse_spec({"name": "p", "runtime": "python", "code": "x", "dependencies": "-e .\n"})
    assert [e.field for e in exc.value.errors] == ["dependencies"]
    with pytest.raises(InvalidInput) as exc:
        parse_patch({"dependencies": "x" * 70_000})
    assert exc.value.errors[0].field == "dependencies" and "KiB" in exc.value.errors[0].message


def test_find_manifest_prefers_the_field_then_the_files():
    files = {"requirements.txt": "from-files\n", "package.json": '{"dependencies": {}}', "package-lock.json": "{}"}
    assert find_manifest("python", "from-field\n", files).text == "from-field\n"
    assert find_manifest("python", "", files).text == "from-files\n"
    assert find_manifest("python", "  \n", {}) is None
    node = find_manifest("nodejs", None, files)
    assert node.file == "package.json" and node.lock == "{}"


def test_cache_key_covers_manifest_lock_runtime_version_platform_and_source_builds():
    m = Manifest("python", "tinypkg\n")
    base = cache_key(m, "3.11.7", "linux-x86_64")
    assert base == cache_key(Manifest("python", "tinypkg\n"), "3.11.7", "linux-x86_64")
    others = {
        cache_key(Manifest("python", "tinypkg==2\n"), "3.11.7", "linux-x86_64"),
        cache_key(m, "3.12.1", "linux-x86_64"),
        cache_key(m, "3.11.7", "linux-aarch64"),
        cache_key(Manifest("python", "tinypkg\n", source_builds=True), "3.11.7", "linux-x86_64"),
        cache_key(Manifest("nodejs", "tinypkg\n"), "3.11.7", "linux-x86_64"),
        cache_key(Manifest("nodejs", "tinypkg\n", lock="{}"), "3.11.7", "linux-x86_64"),
    }
    assert base not in others and len(others) == 6


def test_the_bundled_examples_with_dependencies_load_with_valid_manifests():
    from core import paths
    from core.bundle import bundles_in
    from core.deps.manifest import find_manifest, has_dependencies

    # the manifest beside the code is one of the function's files
    with_deps = {b.spec.name: b.spec for b in bundles_in(paths.bundled_functions_dir()) if has_dependencies(b.spec)}
    assert set(with_deps) == {"humanize-python", "ms-nodejs"}
    for spec in with_deps.values():
        m = find_manifest(spec.runtime, spec.dependencies, spec.files)
        assert m is not None and manifest_problems(m.runtime, m.text, m.lock) == []


def test_package_listing_does_not_follow_links_out_of_the_env(tmp_path):
    from core.deps.installers import node_packages

    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "package.json").write_text('{"name": "host-secret", "version": "9"}')
    tree = tmp_path / "node_modules"
    (tree / "ok").mkdir(parents=True)
    (tree / "ok" / "package.json").write_text('{"name": "ok", "version": "1.0.0"}')
    (tree / "evil").symlink_to(outside)
    assert node_packages(tree) == [{"name": "ok", "version": "1.0.0"}]


def test_sealing_makes_a_tree_roots_and_read_only_without_following_links(tmp_path):
    """What an installer (the sandbox user) left becomes root's and read-only to anyone else;
    a symlink it planted is left alone, never followed to what it points at; set-id bits go."""
    import stat

    from core.deps.manager import seal

    outside = tmp_path / "host-file"
    outside.write_text("host")
    os.chmod(outside, 0o600)
    holder = tmp_path / "env"
    tree = holder / "site"
    (tree / "pkg" / "sub").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("X = 1\n")
    (tree / "pkg" / "sub" / "run").write_text("#!/bin/sh\n")
    os.chmod(tree / "pkg" / "sub" / "run", 0o4777)
    os.chmod(tree / "pkg" / "sub", 0o777)
    os.symlink(outside, tree / "pkg" / "link")
    owner = 65534 if os.geteuid() == 0 else os.geteuid()
    for p in [tree, *tree.rglob("*")]:
        if os.geteuid() == 0:
            os.lchown(p, owner, owner)
    size = seal(tree)
    assert size == len("X = 1\n") + len("#!/bin/sh\n") + len(str(outside))  # a link counts its own size
    for p in [tree, *tree.rglob("*")]:
        st = os.lstat(p)
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (0, 0), p
        if not stat.S_ISLNK(st.st_mode):
            assert not st.st_mode & 0o022 and not st.st_mode & 0o7000, (p, oct(st.st_mode))
            assert st.st_mode & 0o444 == 0o444
    assert stat.S_IMODE(os.stat(tree / "pkg" / "sub").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tree / "pkg" / "sub" / "run").st_mode) == 0o755
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600 and outside.read_text() == "host"
    assert stat.S_IMODE(holder.stat().st_mode) == 0o755
