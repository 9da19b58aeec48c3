from scriptrl.cli import main

raise SystemExit(main())
