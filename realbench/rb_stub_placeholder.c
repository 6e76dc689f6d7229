int rb_placeholder_symbol;
