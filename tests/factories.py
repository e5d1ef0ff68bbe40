import factory

from accounts.models import User

PASSWORD = "a-Long-and-unusual-pass-91"


class UserFactory(factory.django.DjangoModelFactory):
    """Users made the way the product makes them: through `create_user` (email normalized)."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.Sequence(lambda n: f"user{n}")
    password = PASSWORD

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class.objects.create_user(*args, **kwargs)
