"""Sales network reports: items, stores, sales and two tops (stores by income, items by sales)."""
from apps.sales.routes import app
from framework.web.app import ConfigError

SETTINGS = {
    "sales_max_cnt": (1000, int, "largest cnt that /stores/top/ and /items/top/ accept"),
}


@app.on_startup
def check_settings(settings: dict) -> None:
    if settings["sales_max_cnt"] < 1:
        raise ConfigError(f"sales_max_cnt must be >= 1, got {settings['sales_max_cnt']}")


__all__ = ["SETTINGS", "app"]
