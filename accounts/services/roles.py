def roles_sync(*, using: str = "default") -> dict[str, int]:
    return {}
