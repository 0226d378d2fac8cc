import subprocess
import sys

import modelpress


def test_import_stays_light() -> None:
    code = (
        "import sys, modelpress; modelpress.load_recipe; modelpress.run; "
        "heavy = ('onnx', 'onnxruntime', 'onnxscript', 'torchao', 'matplotlib', 'ai_edge_litert', 'torch_pruning');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_resolve() -> None:
    for name in modelpress.__all__:
        assert getattr(modelpress, name) is not None
    recipe = modelpress.load_recipe(
        {"model": "zoo:mlp", "data": "builtin:breast_cancer", "steps": [modelpress.ExportConfig()]}
    )
    assert recipe.steps[0].display_name == "export-onnx"
