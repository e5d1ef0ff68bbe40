"""The floors of shared/DESIGN.md: an app imports only from apps on a lower floor.

One deliberate exception, explained in docs/architecture.md: `delivery` may import
`accounts` (for the audit trail and domain errors); `accounts` never imports `delivery`.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOORS = {
    "core": 0,
    "gateways": 0,
    "accounts": 1,
    "delivery": 1,
    "campaigns": 2,
    "licensing": 2,
    "bonuses": 3,
    "demo_pool": 3,
    "trading_sessions": 3,
    "operations": 4,
}
ALLOWED_SAME_FLOOR = {("delivery", "accounts")}
APPS = set(FLOORS) | {"config"}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & APPS


def test_no_app_imports_upwards_sideways_or_config():
    wrong = []
    for app, floor in FLOORS.items():
        for path in (ROOT / app).rglob("*.py"):
            for target in imports_of(path) - {app}:
                if target == "config":
                    wrong.append(f"{path.relative_to(ROOT)} imports config")
                elif FLOORS[target] >= floor and (app, target) not in ALLOWED_SAME_FLOOR:
                    wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []
