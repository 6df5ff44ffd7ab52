"""One LightningModule per paper or base framework. ``conf/method/<name>.yaml`` names each one."""
