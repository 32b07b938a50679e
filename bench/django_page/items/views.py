from django.shortcuts import render

from .models import Item


def item_list(request):
    items = list(Item.objects.all()[:20])
    return render(request, 'items/list.html', {'items': items})
