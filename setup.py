"""The one thing ``pyproject.toml`` cannot say: the top-level ``config/`` directory ships
in the wheel as the package ``stream_app.config`` (the deployable configuration stays in
one place in the repository; an installed package still finds it)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["stream_app*"]), "stream_app.config"],
    package_dir={"stream_app.config": "config"},
)
