#!/usr/bin/env python3
"""Checks the crates' dependencies against docs/ARCHITECTURE.md.

Fails (exit 1, one line per problem) when:
  * a crate depends on a poco crate its row of the table does not allow (for its code, or for
    its tests and benchmarks);
  * the crates' dependencies, tests included, form a cycle;
  * a crate is missing from the table, or the table names a crate that does not exist;
  * a crate declares a dependency other than from `[workspace.dependencies]`
    (`name.workspace = true`), so that every dependency is declared once.
"""

import json
import pathlib
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def table_rows(text):
    """The crates table between its markers: {crate: (code deps, extra test deps)}."""
    try:
        body = text.split("<!-- crates:begin -->", 1)[1].split("<!-- crates:end -->", 1)[0]
    except IndexError:
        sys.exit(f"{DOC}: the crates table markers are missing")
    rows = {}
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("poco-"):
            continue
        split = lambda cell: {name.strip() for name in cell.split(",") if name.strip()}
        rows[cells[0]] = (split(cells[2]), split(cells[3]))
    return rows


def workspace_packages():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["packages"]


def find_cycle(graph):
    """A cycle of `graph` (name -> set of names), as a list, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for next_node in sorted(graph.get(node, ())):
            if state.get(next_node) == "open":
                return path[path.index(next_node):] + [next_node]
            if next_node not in state:
                found = visit(next_node, path + [next_node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    rows = table_rows(DOC.read_text())
    problems = []
    graph = {}
    names = set()
    for package in workspace_packages():
        name = package["name"]
        names.add(name)
        if name not in rows:
            problems.append(f"{name} has no row in {DOC.relative_to(ROOT)}")
            continue
        allowed_code, allowed_tests = rows[name]
        graph[name] = set()
        for dep in package["dependencies"]:
            if not dep["name"].startswith("poco-"):
                continue
            graph[name].add(dep["name"])
            allowed = allowed_code if dep["kind"] in (None, "build") else allowed_code | allowed_tests
            if dep["name"] not in allowed:
                what = "its tests" if dep["kind"] == "dev" else "its code"
                problems.append(
                    f"{name} depends on {dep['name']} for {what}: "
                    f"{DOC.relative_to(ROOT)} does not allow that arrow"
                )
        manifest = tomllib.loads(pathlib.Path(package["manifest_path"]).read_text())
        for section in ("dependencies", "dev-dependencies", "build-dependencies"):
            for dep_name, spec in manifest.get(section, {}).items():
                if not (isinstance(spec, dict) and spec.get("workspace") is True):
                    problems.append(
                        f"{name} declares {dep_name} in [{section}] itself: declare it once in "
                        "[workspace.dependencies] and use `workspace = true`"
                    )
    for name in sorted(set(rows) - names):
        problems.append(f"{DOC.relative_to(ROOT)} names {name}, which is not a crate of the workspace")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("the crates' dependencies form a cycle: " + " -> ".join(cycle))
    for problem in problems:
        print(f"architecture: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"architecture: {len(names)} crates, every arrow allowed by {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
