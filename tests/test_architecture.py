"""The floors of shared/DESIGN.md: a package imports only from packages on a lower floor.

Every top-level Python package of the repository is on the plan, the wiring (`config`), the
harness (`bench`) and the tests included: a new package fails here until it gets a floor.

One deliberate exception, explained in docs/architecture.md: `delivery` may import
`accounts` (for the audit trail and domain errors); `accounts` never imports `delivery`.
"""

import ast
import re
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
    # Settings, urls, the Celery app: it may import any app, and no app imports it.
    "config": 5,
    # The harness: it may import anything, config included; nothing in the product imports it.
    "bench": 6,
    # The tests read everything, the harness included.
    "tests": 7,
}
ALLOWED_SAME_FLOOR = {("delivery", "accounts")}


def top_level_packages(root: Path) -> set[str]:
    """Every folder of `root` that Python can import: an `__init__.py` or a module in it."""
    return {
        folder.name
        for folder in root.iterdir()
        if folder.is_dir()
        and not folder.name.startswith(".")
        and ((folder / "__init__.py").exists() or any(folder.glob("*.py")))
    }


def imports_of(path: Path, packages: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & packages


def floor_violations(root: Path) -> list[str]:
    """What breaks the plan under `root`: packages not on it, and imports up or sideways."""
    packages = top_level_packages(root)
    wrong = [f"{name}/ is not on the floor plan" for name in sorted(packages - set(FLOORS))]
    for package in sorted(packages & set(FLOORS)):
        floor = FLOORS[package]
        for path in sorted((root / package).rglob("*.py")):
            for target in sorted(imports_of(path, packages) - {package}):
                if target not in FLOORS:
                    continue  # reported above, as a package off the plan
                if target == "core" and package != "core":
                    continue  # everything may import core (DESIGN.md); core imports no app
                if FLOORS[target] >= floor and (package, target) not in ALLOWED_SAME_FLOOR:
                    wrong.append(f"{path.relative_to(root)} imports {target}")
    return wrong


def test_every_top_level_package_is_on_the_plan_and_imports_only_downwards():
    assert floor_violations(ROOT) == []


def test_the_plan_names_only_packages_that_exist():
    assert set(FLOORS) <= top_level_packages(ROOT)


def test_the_scan_catches_an_app_importing_the_harness_or_config_and_a_package_off_the_plan(
    tmp_path,
):
    def module(relative: str, source: str = ""):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)

    for package in FLOORS:
        module(f"{package}/__init__.py")
    module("licensing/management/commands/bench_x.py", "from bench.license_urls import X\n")
    module("operations/views.py", "import config.settings\n")
    module("bench/settings.py", "from config.settings import *  # noqa: F403\n")
    module("config/urls.py", "from operations import views\n")
    module("soak/run.py", "import accounts\n")
    module("delivery/audit.py", "from accounts.services import audit_record\n")

    assert floor_violations(tmp_path) == [
        "soak/ is not on the floor plan",
        "licensing/management/commands/bench_x.py imports bench",
        "operations/views.py imports config",
    ]


# --- Defined once ------------------------------------------------------------------------------

# The house's shared pieces, each with its one home (DESIGN.md: "core"). A second definition
# anywhere in the product is a copy that will drift.
DEFINED_ONCE = {
    r"^CENT\s*=": "core/money.py",
    r"^ZERO\s*=": "core/money.py",
    r"^MAX_BIGINT\s*=": "core/money.py",
    r"^def cents_down\(": "core/money.py",
    r"^HANDED_TO_CALLER\b": None,  # the channel registry says it (`hands_link_to_caller`)
    r"^class ReadOnlyAdminMixin\b": "core/admin.py",
    r"^class IdFilter\b": "core/filters.py",
    r"^def client_ip\(": "core/net.py",
}
PRODUCT = sorted(set(FLOORS) - {"tests", "bench"})


def test_each_house_constant_and_helper_is_defined_once_in_its_home():
    found: dict[str, list[str]] = {pattern: [] for pattern in DEFINED_ONCE}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line in path.read_text().splitlines():
                for pattern in DEFINED_ONCE:
                    if re.match(pattern, line.strip()) and not line.startswith((" ", "\t")):
                        found[pattern].append(str(path.relative_to(ROOT)))
    expected = {pattern: [home] if home else [] for pattern, home in DEFINED_ONCE.items()}
    assert found == expected


def test_no_module_names_another_models_enum_by_an_alias():
    # `Status = Delivery.Status` at the top of a module made "Status" mean five different
    # enums across the code; each use now says whose enum it is.
    alias = re.compile(
        r"^[A-Za-z_]\w* = [A-Z]\w*\.(Status|Kind|Outcome|Action|TriggerType|Method)$"
    )
    found = [
        f"{path.relative_to(ROOT)}: {line}"
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in path.read_text().splitlines()
        if alias.match(line)
    ]
    assert found == []
