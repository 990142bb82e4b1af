"""API of the users app, mounted at /api/ beside console.api and clusters.api, one module per
area: people.py (/api/people/, /api/accounts/, /api/directory-syncs/, read-only), lifecycle.py
(the account lifecycle actions, POST) and offboarding.py (POST offboard and undo, GET the run).

Each behind the same gate as its page (users.access).
"""

from users.api import lifecycle, offboarding, people

# In this order: the lifecycle's accounts/create/ before the router's accounts/<pk>/.
urlpatterns = [*offboarding.urlpatterns, *lifecycle.urlpatterns, *people.router.urls]
