function processJson(event, context) {
  const { items = [], minPrice = 0, category, sortBy = 'name', order = 'asc' } = event;
  if (!Array.isArray(items)) throw new TypeError('event.items must be an array');

  const selected = items
    .filter((it) => (it.price ?? 0) >= minPrice && (!category || it.category === category))
    .sort((a, b) => {
      const cmp = a[sortBy] < b[sortBy] ? -1 : a[sortBy] > b[sortBy] ? 1 : 0;
      return order === 'desc' ? -cmp : cmp;
    });

  const byCategory = {};
  let total = 0;
  for (const it of selected) {
    const value = (it.price ?? 0) * (it.quantity ?? 1);
    const agg = (byCategory[it.category] ??= { count: 0, quantity: 0, value: 0 });
    agg.count += 1;
    agg.quantity += it.quantity ?? 1;
    agg.value = round2(agg.value + value);
    total += value;
  }

  return {
    count: selected.length,
    filteredOut: items.length - selected.length,
    totalValue: round2(total),
    byCategory,
    items: selected,
  };
}

function round2(x) {
  return Math.round(x * 100) / 100;
}
