"""Fills the table with 20 items: `python3 manage.py shell -c 'import items.populate'`."""
from items.models import Item

Item.objects.all().delete()
Item.objects.bulk_create(Item(name='item-%02d' % i, price=100 + i) for i in range(1, 21))
