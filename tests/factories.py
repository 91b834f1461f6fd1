import factory
from django.utils import timezone

from alignment.models import Role, User
from leads.models import (
    AssignmentRule,
    Campaign,
    Channel,
    Lead,
    PoolMember,
    Source,
    Stage,
    Touchpoint,
    TouchpointKind,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = Role.MARKETER

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or "pw")
        if create:
            obj.save(update_fields=["password"])


class RepFactory(UserFactory):
    role = Role.SALES_REP
    capacity = 50


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("key",)

    name = factory.Iterator(["Google", "LinkedIn", "Webinar", "Referral"])
    key = factory.LazyAttribute(lambda s: s.name.lower())


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = Channel.EMAIL
    utm_source = "newsletter"
    utm_medium = "email"
    utm_campaign = factory.Sequence(lambda n: f"campaign-{n}")
    budget = 1000


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@acme{n % 50}.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    company = factory.Faker("company")
    title = "Head of Operations"
    industry = "Software"
    country = "DE"
    company_size = 120
    stage = Stage.NEW


class TouchpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Touchpoint

    lead = factory.SubFactory(LeadFactory)
    kind = TouchpointKind.WEB_VISIT
    occurred_at = factory.LazyFunction(timezone.now)


class AssignmentRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssignmentRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    position = factory.Sequence(lambda n: n)
    conditions = factory.LazyFunction(list)


class PoolMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PoolMember

    rule = factory.SubFactory(AssignmentRuleFactory)
    rep = factory.SubFactory(RepFactory)
    weight = 1
