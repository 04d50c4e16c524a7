"""`/api/v1/network`: the institutions of the regional network."""

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router
from ninja.pagination import PageNumberPagination, paginate

from clinical_shell.network.models import Institution
from clinical_shell.network.schemas import InstitutionOut
from clinical_shell.network.selectors import institutions

router = Router(tags=["network / 医疗网络"])


@router.get("/institutions", response=list[InstitutionOut], summary="Institutions / 机构")
@paginate(PageNumberPagination)
def list_institutions(request: HttpRequest) -> QuerySet[Institution]:
    return institutions()
