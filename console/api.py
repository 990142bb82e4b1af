"""REST API of the console app. (Being written.)"""

urlpatterns = []
