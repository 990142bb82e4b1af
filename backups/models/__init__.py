"""Models of the backups app, one module per area, all re-exported here.

`core`: catalogs, policies, runs, restores. Each later area (schedules, restore, assurance,
reports) adds its own module and one star-import line below.
"""

from backups.models.assurance import *  # noqa: F403
from backups.models.core import *  # noqa: F403
from backups.models.restore import *  # noqa: F403
from backups.models.schedules import *  # noqa: F403
