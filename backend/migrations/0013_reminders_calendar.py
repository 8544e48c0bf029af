# Issue 17: time zones, reminders, calendar feed.

import backend.models.users
import django.db.models.deletion
from django.db import migrations, models


def fill_calendar_tokens(apps, schema_editor):
    # One fresh secret per existing account: a field default would give every row the same
    # value (evaluated once), which the unique constraint refuses.
    User = apps.get_model("backend", "User")
    for user in User.objects.filter(calendar_token__isnull=True).only("pk").iterator():
        User.objects.filter(pk=user.pk).update(
            calendar_token=backend.models.users.new_calendar_token()
        )


class Migration(migrations.Migration):

    dependencies = [
        ('backend', '0012_catalog_search_vector'),
    ]

    operations = [
        migrations.AddField(
            model_name='session',
            name='rescheduled_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='session',
            name='schedule_sequence',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='user',
            name='calendar_token',
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.RunPython(fill_calendar_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='user',
            name='calendar_token',
            field=models.CharField(default=backend.models.users.new_calendar_token, help_text="The secret of the calendar feed's URL (`calendar_feed_url` in users/me/).", max_length=64, unique=True),
        ),
        migrations.CreateModel(
            name='Reminder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('offset_minutes', models.PositiveIntegerField()),
                ('start_time', models.DateTimeField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('booking', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='backend.booking')),
                ('session', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reminders', to='backend.session')),
            ],
            options={
                'db_table': 'reminders',
                'ordering': ['id'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('booking__isnull', False)), fields=('booking', 'offset_minutes', 'start_time'), name='reminder_once_per_booking_offset_start'), models.UniqueConstraint(condition=models.Q(('booking__isnull', True)), fields=('session', 'offset_minutes', 'start_time'), name='reminder_creator_once_per_session_offset_start')],
            },
        ),
    ]
