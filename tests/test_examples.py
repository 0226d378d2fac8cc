from pathlib import Path

import pytest

from modelpress.core.recipe import load_recipe

EXAMPLES = sorted(Path(__file__).parent.parent.glob("examples/**/recipe.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_recipes_validate(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.steps, f"{path} has no steps"
    assert (path.parent / "README.md").is_file()


def test_there_are_examples() -> None:
    assert EXAMPLES
