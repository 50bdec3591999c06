"""watchbench's tasks for `inv` and `python -m invoke` in the checkout. The collection
lives in the package (watchbench/cli/tasks.py), so that an installed `wb` has it too;
`./wb` and `wb` run it as their bundled namespace (watchbench/cli/program.py)."""

from watchbench.cli.tasks import *  # noqa: F403 -- every task, as `tasks.export` etc.
from watchbench.cli.tasks import ns  # noqa: F401 -- what invoke's loader looks for
