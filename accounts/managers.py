from django.contrib.auth.base_user import BaseUserManager


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("The email address must be set.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        user = self._create_user(email, password, **extra_fields)
        # Staff sign in through allauth, which wants a verified address; the creator typed this one at the
        # server's console (manage.py createsuperuser), so no confirmation email is needed to get in.
        from allauth.account.models import EmailAddress

        EmailAddress.objects.using(self._db).get_or_create(
            user=user, email=user.email, defaults={"primary": True, "verified": True}
        )
        return user

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)
