"""The services a frontend (HTTP, CLI, dashboard) drives, gathered in one object."""

from __future__ import annotations

import attrs

from farm_domain.audit import AuditTrail
from farm_domain.budgets import CreateBudgets
from farm_domain.catalogue import SoftwareCatalogue
from farm_domain.controls import Controls
from farm_domain.explain import Explainer
from farm_domain.files import AgentUpdates, TaskLogs
from farm_domain.identities import IdentityService
from farm_domain.jobs import JobService
from farm_domain.jobtypes import JobTypeCatalogue
from farm_domain.live import LiveUpdates
from farm_domain.monitoring import Monitoring
from farm_domain.overview import FarmOverview
from farm_domain.registry import AgentRegistry
from farm_domain.state_history import StateHistory


@attrs.frozen
class Farm:
    """Everything a frontend may call. Built by the composition root."""

    agents: AgentRegistry
    software: SoftwareCatalogue
    jobtypes: JobTypeCatalogue
    jobs: JobService
    logs: TaskLogs
    updates: AgentUpdates
    identities: IdentityService
    events: AuditTrail
    creates: CreateBudgets
    explain: Explainer
    controls: Controls
    monitoring: Monitoring
    history: StateHistory
    live: LiveUpdates
    overview: FarmOverview
