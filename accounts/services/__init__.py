"""Every write of the accounts app. Other apps import from here, never from the submodules."""
