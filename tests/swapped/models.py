"""A swapped DOT Application, to prove the app works when a project swaps it.

Only Application is swapped: swapping the token models too (they must go together, DOT W011)
creates a migration cycle with DOT's IDToken that DOT leaves to new projects to untangle.
"""

from django.db import models
from oauth2_provider.models import AbstractApplication


class SwappedApplication(AbstractApplication):
    department = models.CharField(max_length=50, blank=True, default="")
